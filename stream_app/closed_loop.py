"""What follows the champion's scoring of a batch: the shadow challenger, the scored-transaction log, drift.

`ClosedLoop.follow` is the pipeline's one hook (`BatchProcessor(follow=...)`); docs/FEEDBACK.md tells the whole
loop. Nothing here can fail a batch: an error in any step is logged, counted
(`momoguard_closed_loop_errors_total{step}`) and costs only that step's output for that batch.
"""

from __future__ import annotations

import logging
import time

from core.settings import Settings
from registry import LoadedModel
from stream_app.drift import DriftMonitor
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import Record, ScoredBatch
from stream_app.scored_log import scored_records
from stream_app.shadow import Shadow

log = logging.getLogger(__name__)

_ERROR_LOG_INTERVAL_S = 30.0


class ClosedLoop:
    """The shadow, the log records and the drift window of one worker."""

    def __init__(self, settings: Settings, metrics: ScorerMetrics, champion: LoadedModel) -> None:
        self.metrics = metrics
        self.log_topic = settings.topic_scored if settings.scored_log else None
        self.shadow = Shadow(settings.topic_shadow, metrics)
        self.drift = DriftMonitor(metrics, settings.drift_window_s, settings.drift_min_transactions)
        self.drift.use(champion.reference)
        self._last_error_logged: dict[str, float] = {}

    def champion_changed(self, model: LoadedModel) -> None:
        """A new champion: a new drift window against its own reference."""
        self.drift.use(model.reference)

    def follow(self, batch: ScoredBatch) -> list[Record]:
        """The shadow verdicts and the log records of a scored batch; counts it into the drift window."""
        records, shadow = self.shadow.score(batch)
        if self.log_topic is not None:
            try:
                logged = scored_records(batch, self.log_topic, shadow)
            except Exception:
                self._failed("log")
            else:
                records += logged
                self.metrics.scored_log_records.inc(len(batch.transactions))
        try:
            self.drift.observe(batch.scored.features, batch.scored.scores)
        except Exception:
            self._failed("drift")
        return records

    def _failed(self, step: str) -> None:
        self.metrics.closed_loop_errors.labels(step).inc()
        now = time.monotonic()
        if now - self._last_error_logged.get(step, 0.0) > _ERROR_LOG_INTERVAL_S:
            self._last_error_logged[step] = now
            log.exception("the closed loop's %s step failed on a batch (the verdicts are unaffected)", step)
