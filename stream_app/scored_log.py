"""The scored-transaction log's side of the scorer: scored batches gathered into records of the scored topic.

The records carry the champion's very feature matrix (never computed again), its score and decision, and the
challenger's when one shadowed the batch (schemas/scored.py defines them). A fetch's offsets are committed only
once its rows in the log are acknowledged too, like its verdicts: the log misses nothing the scorer answered.

Rows wait here, after their verdicts have been produced, until ROWS_PER_MESSAGE of them are gathered or the
oldest has waited `linger_s`: a message per small fetch would spend more of the event loop on Arrow's set-up
than on scoring (at 1,000 tx/s a fetch holds a few transactions), and delay the verdicts of the fetches behind.
The commit of a fetch waits for its rows' message, at most `linger_s` plus the broker's acknowledgement.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from schemas.scored import RECORD_KIND, ROWS_PER_MESSAGE, ModelColumns, ScoredRows, ShadowColumns, scored_messages
from stream_app.pipeline import Record, ScoredBatch

log = logging.getLogger(__name__)

RECORD_HEADER = "momoguard.record"


def scored_rows(batch: ScoredBatch, shadow: ShadowColumns | None = None) -> ScoredRows:
    """A scored batch as rows of the log."""
    model = batch.scorer.model
    scored = batch.scored
    return ScoredRows(
        batch.transactions,
        scored.features,
        scored.scores,
        scored.blocked,
        scored.reviewed,
        ModelColumns(model.name, model.version, model.feature_set, model.threshold),
        datetime.now(UTC),
        batch.event_times,
        shadow,
    )


def scored_records(topic: str, parts: list[ScoredRows]) -> list[Record]:
    """The scored-topic records of these rows (one message per ROWS_PER_MESSAGE rows, no key)."""
    # No `source`: a record the broker refuses for good is counted and skipped (the transactions have verdicts).
    return [Record(topic, None, message, [(RECORD_HEADER, RECORD_KIND)]) for message in scored_messages(parts)]


class ScoredLog:
    """Rows of scored batches waiting to become scored-topic records, and who waits for them to be acknowledged.

    `add` gathers a batch's rows; `after_logged` registers a callback for every row gathered so far; `due` says
    whether to `take` now. `take` returns the records and one callback to run once they are all acknowledged,
    which runs the registered ones. Single-threaded: the event loop's (or the baseline loop's).
    """

    def __init__(
        self,
        topic: str,
        linger_s: float,
        max_rows: int = ROWS_PER_MESSAGE,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self.topic = topic
        self.on_error = on_error  # building the records failed: the rows are lost to the log, never the verdicts
        self.linger_s = linger_s
        self.max_rows = max_rows
        self._parts: list[ScoredRows] = []
        self._waiting: list[Callable[[], None]] = []
        self._rows = 0
        self._since = 0.0  # monotonic time the oldest row waiting was added

    @property
    def rows(self) -> int:
        """Rows waiting for their message."""
        return self._rows

    def add(self, rows: ScoredRows) -> None:
        if not len(rows):
            return
        if not self._rows:
            self._since = time.monotonic()
        self._parts.append(rows)
        self._rows += len(rows)

    def after_logged(self, callback: Callable[[], None]) -> None:
        """Run `callback` once every row added so far is acknowledged by the broker (at once if none waits)."""
        if self._rows:
            self._waiting.append(callback)
        else:
            callback()

    def due(self, now: float | None = None) -> bool:
        """A message's worth of rows waits, or the oldest row has waited `linger_s`."""
        if not self._rows:
            return False
        now = time.monotonic() if now is None else now
        return self._rows >= self.max_rows or now - self._since >= self.linger_s

    def take(self) -> tuple[list[Record], Callable[[], None]]:
        """Every waiting row as records, and the callback to run once they are acknowledged.

        Records that cannot be built (a bug) cost only those rows' log records: the callback is returned all the
        same, or the fetches waiting for it would never be committed."""
        parts, waiting = self._parts, self._waiting
        self._parts, self._waiting, self._rows = [], [], 0
        try:
            records = scored_records(self.topic, parts)
        except Exception:
            if self.on_error is None:
                log.exception("the scored log's records of %d batches could not be built", len(parts))
            else:
                self.on_error()  # logs and counts
            records = []

        def logged() -> None:
            for callback in waiting:
                callback()

        return records, logged
