"""Validated transactions -> features -> scores and reasons -> verdict bytes, for one micro-batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from registry import LoadedModel
from schemas.features import build_features
from schemas.frame import columns_from_transactions
from schemas.transaction import Transaction
from schemas.verdict import Reason, Verdict, verdict_bytes


@dataclass(frozen=True, slots=True)
class Scored:
    """One batch's outcome: the verdicts as wire bytes, what the metrics need, and the feature matrix scored."""

    verdicts: list[bytes]
    scores: np.ndarray
    blocked: np.ndarray
    features: np.ndarray  # one row per verdict: what the scored-transaction log keeps (stream_app/scored_log.py)

    @classmethod
    def join(cls, parts: Sequence[Scored]) -> Scored:
        """Several outcomes as one, in order (the one-by-one fallback of a batch that failed to score)."""
        if not parts:
            return cls([], np.empty(0), np.empty(0, dtype=bool), np.empty((0, 0)))
        return cls(
            [v for part in parts for v in part.verdicts],
            np.concatenate([part.scores for part in parts]),
            np.concatenate([part.blocked for part in parts]),
            np.concatenate([part.features for part in parts]),
        )


class Scorer:
    """Scores micro-batches with one model version; swapped whole when a new champion arrives.

    Predictions run on one thread: a micro-batch is too small to gain from OpenMP, whose thread start-up
    and spinning cost milliseconds per call on a busy 2-core machine (scale with worker processes instead).
    """

    def __init__(self, model: LoadedModel, reasons: int = 3, explain_min_score: float = 0.0) -> None:
        self.model = model
        self.reasons = reasons
        self.explain_min_score = explain_min_score
        self._names = np.array(model.feature_names, dtype=object)

    @property
    def version(self) -> str:
        return self.model.version

    def score(self, transactions: Sequence[Transaction], now: datetime | None = None) -> Scored:
        """Score a batch through the shared feature function; one verdict per transaction, in order."""
        if not transactions:
            return Scored([], np.empty(0), np.empty(0, dtype=bool), np.empty((0, len(self.model.feature_names))))
        features = build_features(columns_from_transactions(transactions), self.model.feature_set)
        booster = self.model.booster
        scores = np.asarray(booster.predict(features, num_threads=1), dtype=np.float64)
        blocked = scores >= self.model.threshold
        reasons = self._reasons(features, scores)
        scored_at = now or datetime.now(UTC)
        model = self.model
        verdicts = [
            verdict_bytes(
                Verdict(
                    tx.tx_id,
                    "block" if block else "allow",
                    score,
                    model.threshold,
                    model.name,
                    model.version,
                    scored_at,
                    why,
                    tx.event_time,
                )
            )
            for tx, score, block, why in zip(transactions, scores.tolist(), blocked.tolist(), reasons, strict=True)
        ]
        return Scored(verdicts, scores, blocked, features)

    def _reasons(self, features: np.ndarray, scores: np.ndarray) -> list[list[Reason]]:
        # Exact SHAP values cost far more than the prediction itself, so only verdicts that may matter
        # (blocked, or scoring above explain_min_score) are explained; the rest carry no reasons.
        reasons: list[list[Reason]] = [[] for _ in range(len(scores))]
        if not self.reasons:
            return reasons
        explain = np.flatnonzero(scores >= min(self.explain_min_score, self.model.threshold))
        if explain.size:
            for row, why in zip(explain.tolist(), self._top_reasons(features[explain]), strict=True):
                reasons[row] = why
        return reasons

    def _top_reasons(self, features: np.ndarray) -> list[list[Reason]]:
        # pred_contrib: per-feature log-odds contributions, last column the bias (dropped).
        contrib = np.asarray(self.model.booster.predict(features, pred_contrib=True, num_threads=1))[:, :-1]
        k = min(self.reasons, contrib.shape[1])
        top = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
        values = np.take_along_axis(contrib, top, axis=1)
        names = self._names[top]
        return [
            [Reason(n, round(v, 6)) for n, v in zip(row_n, row_v, strict=True) if v != 0]
            for row_n, row_v in zip(names.tolist(), values.tolist(), strict=True)
        ]
