"""The shadow challenger: every batch the champion scores, the `challenger` version scores too, and nothing acts on it.

Its verdicts (`Verdict`s of the challenger, reasons and all) go to `verdicts.shadow`, keyed like the real ones;
what it decided goes into the scored-transaction log beside the champion's, for `momoguard models compare`;
agreement and its score distribution go to Prometheus. A challenger that fails to score a batch costs that
batch its shadow verdicts, never a champion verdict.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from schemas.scored import DECISIONS, ShadowColumns, decision_codes
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import Record, ScoredBatch
from stream_app.scoring import Scored, Scorer

log = logging.getLogger(__name__)

# A challenger failing on every batch would otherwise log thousands of tracebacks a second.
_ERROR_LOG_INTERVAL_S = 30.0


class Shadow:
    """The challenger's scorer, swapped whole between batches like the champion's."""

    def __init__(self, topic: str, metrics: ScorerMetrics) -> None:
        self.topic = topic
        self.metrics = metrics
        self.scorer: Scorer | None = None
        self.refused: dict[str, tuple[str | None, ...]] = {}  # unusable challengers' tags, said once
        self._last_error_logged = 0.0
        self.shadowed = 0  # transactions the current challenger scored, and how many it decided as the champion
        self.agreed = 0

    @property
    def version(self) -> str | None:
        return None if self.scorer is None else self.scorer.version

    def use(self, scorer: Scorer | None) -> None:
        """Shadow with this challenger from the next batch on (None: stop shadowing)."""
        self.scorer = scorer
        self.shadowed = self.agreed = 0
        self.metrics.shadow_model_info.clear()
        if scorer is not None:
            self.metrics.shadow_model_info.labels(scorer.model.name, scorer.version).set(1)

    def view(self) -> dict[str, object]:
        """What the built-in dashboard shows: the challenger, and how often it agreed with the champion."""
        return {
            "version": self.version,
            "shadowed": self.shadowed,
            "agreement": self.agreed / self.shadowed if self.shadowed else None,
        }

    def score(self, batch: ScoredBatch) -> tuple[list[Record], ShadowColumns | None]:
        """The challenger's verdicts for the batch (to the shadow topic) and its columns for the scored log."""
        scorer = self.scorer
        if scorer is None:
            return [], None
        try:
            scored = scorer.score(batch.transactions, state=batch.state)
        except Exception:
            self.metrics.closed_loop_errors.labels("shadow").inc()
            now = time.monotonic()
            if now - self._last_error_logged > _ERROR_LOG_INTERVAL_S:
                self._last_error_logged = now
                log.exception(
                    "the challenger (version %s) failed to score a batch; no shadow verdicts for it", scorer.version
                )
            return [], None
        # No `source`: a shadow verdict the broker refuses for good is counted and skipped, never dead-lettered
        # (its transaction has its real verdict).
        records = [
            Record(self.topic, source.key, verdict)
            for source, verdict in zip(batch.sources, scored.verdicts, strict=True)
        ]
        self._count(batch.scored, scored)
        self.metrics.shadow_score.observe_many(scored.scores)
        return records, ShadowColumns(scorer.version, scored.scores, scored.blocked, scored.reviewed)

    def _count(self, champion: Scored, challenger: Scored) -> None:
        """Count each (champion, challenger) pair of decisions: allow, review or block, as each would act."""
        n = len(DECISIONS)
        pairs = decision_codes(champion.blocked, champion.reviewed) * n + decision_codes(
            challenger.blocked, challenger.reviewed
        )
        counts = np.bincount(pairs, minlength=n * n)
        self.shadowed += int(pairs.size)
        self.agreed += int(sum(counts[i * n + i] for i in range(n)))
        decisions = self.metrics.shadow_decisions
        for i, ours in enumerate(DECISIONS):
            for j, theirs in enumerate(DECISIONS):
                if counts[i * n + j]:
                    decisions.labels(ours, theirs).inc(int(counts[i * n + j]))
