"""What follows the champion's scoring of a batch: the shadow challenger, the scored-transaction log, drift.

`ClosedLoop.follow` is the pipeline's one hook (`BatchProcessor(follow=...)`); docs/FEEDBACK.md tells the whole
loop. Nothing here can fail a batch: an error in any step is logged, counted
(`momoguard_closed_loop_errors_total{step}`) and costs only that step's output for that batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from core.settings import Settings
from registry import LoadedModel
from stream_app.drift import DriftMonitor
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import Record, ScoredBatch
from stream_app.scored_log import ScoredLog, scored_rows
from stream_app.shadow import Shadow

log = logging.getLogger(__name__)

_ERROR_LOG_INTERVAL_S = 30.0


class ClosedLoop:
    """The shadow, the log records and the drift window of one worker."""

    def __init__(self, settings: Settings, metrics: ScorerMetrics, champion: LoadedModel) -> None:
        self.metrics = metrics
        self.log = (
            ScoredLog(settings.topic_scored, settings.scored_log_linger_ms / 1000.0, on_error=self._log_failed)
            if settings.scored_log
            else None
        )
        self.shadow = Shadow(settings.topic_shadow, metrics)
        self.drift = DriftMonitor(metrics, settings.drift_window_s, settings.drift_min_transactions)
        self.drift.use(champion.reference)
        self._last_error_logged: dict[str, float] = {}

    def champion_changed(self, model: LoadedModel) -> None:
        """A new champion: a new drift window against its own reference."""
        self.drift.use(model.reference)

    def follow(self, batch: ScoredBatch) -> list[Record]:
        """The shadow verdicts of a scored batch; gathers its rows for the log, counts it into the drift window."""
        records, shadow = self.shadow.score(batch)
        if self.log is not None:
            try:
                self.log.add(scored_rows(batch, shadow))
            except Exception:
                self._failed("log")
        try:
            self.drift.observe(batch.scored.features, batch.scored.scores)
        except Exception:
            self._failed("drift")
        return records

    def after_logged(self, callback: Callable[[], None]) -> None:
        """Run `callback` once every row gathered so far is acknowledged in the log (at once with no log)."""
        if self.log is None:
            callback()
        else:
            self.log.after_logged(callback)

    def take_log(self, force: bool = False) -> tuple[list[Record], Callable[[], None]] | None:
        """The log's records and the callback for their acknowledgement, when due (or waiting at all, `force`d:
        a revoke, a stop, the baseline's every batch); None when nothing is to be produced now."""
        log_ = self.log
        if log_ is None or not (log_.due() or (force and log_.rows)):
            return None
        rows = log_.rows
        taken = log_.take()
        if taken[0]:
            self.metrics.scored_log_records.inc(rows)
        return taken

    def _log_failed(self) -> None:
        self._failed("log")

    def _failed(self, step: str) -> None:
        self.metrics.closed_loop_errors.labels(step).inc()
        now = time.monotonic()
        if now - self._last_error_logged.get(step, 0.0) > _ERROR_LOG_INTERVAL_S:
            self._last_error_logged[step] = now
            log.exception("the closed loop's %s step failed on a batch (the verdicts are unaffected)", step)
