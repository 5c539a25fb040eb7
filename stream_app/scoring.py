"""Validated transactions -> features -> scores and reasons -> decisions -> verdict bytes, for one micro-batch.

The decisions (thresholds, review tier, the desk's lists, the deadline) are stream_app/decisions.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from registry import LoadedModel
from schemas.features import build_features, uses_account_state
from schemas.frame import columns_from_transactions
from schemas.transaction import Transaction
from schemas.verdict import Reason, Verdict, verdict_bytes
from stream_app.decisions import DecisionPolicy, decide
from stream_app.reasons import load_catalog, reason_code


@dataclass(frozen=True, slots=True)
class Scored:
    """One batch's outcome: the verdicts as wire bytes, what the metrics need, and the feature matrix scored."""

    verdicts: list[bytes]
    scores: np.ndarray
    blocked: np.ndarray  # decision `block` (by the model or a list)
    reviewed: np.ndarray  # decision `review`
    late: np.ndarray  # made after event time + deadline
    features: np.ndarray  # one row per verdict: what the scored-transaction log keeps (stream_app/scored_log.py)
    listed: dict[str, int] = field(default_factory=dict)  # decisions made by a list entry, by action

    @classmethod
    def empty(cls, n_features: int = 0) -> Scored:
        nothing = np.empty(0, dtype=bool)
        return cls([], np.empty(0), nothing, nothing, nothing, np.empty((0, n_features)))

    @classmethod
    def join(cls, parts: Sequence[Scored]) -> Scored:
        """Several outcomes as one, in order (the one-by-one fallback of a batch that failed to score)."""
        if not parts:
            return cls.empty()
        listed: dict[str, int] = {}
        for part in parts:
            for action, n in part.listed.items():
                listed[action] = listed.get(action, 0) + n
        return cls(
            [v for part in parts for v in part.verdicts],
            np.concatenate([part.scores for part in parts]),
            np.concatenate([part.blocked for part in parts]),
            np.concatenate([part.reviewed for part in parts]),
            np.concatenate([part.late for part in parts]),
            np.concatenate([part.features for part in parts]),
            listed,
        )


class Scorer:
    """Scores micro-batches with one model version; swapped whole when a new champion arrives.

    Predictions run on one thread: a micro-batch is too small to gain from OpenMP, whose thread start-up
    and spinning cost milliseconds per call on a busy 2-core machine (scale with worker processes instead).
    """

    def __init__(
        self,
        model: LoadedModel,
        reasons: int = 3,
        explain_min_score: float = 0.0,
        policy: DecisionPolicy | None = None,
    ) -> None:
        self.model = model
        self.reasons = reasons
        self.explain_min_score = explain_min_score
        self.policy = policy or DecisionPolicy()
        # Review needs both the operator's switch and a version that has a review threshold.
        self.review_threshold = model.review_threshold if self.policy.review_tier else None
        catalog = self.policy.catalog or load_catalog()
        self._names = model.feature_names
        # (code, text) of each feature's contribution either way, looked up per reason: no string work per row.
        self._raising = [(code, catalog.text(code)) for code in (reason_code(n, 1.0) for n in self._names)]
        self._lowering = [(code, catalog.text(code)) for code in (reason_code(n, -1.0) for n in self._names)]

    @property
    def version(self) -> str:
        return self.model.version

    def score(
        self,
        transactions: Sequence[Transaction],
        now: datetime | None = None,
        started_at: np.ndarray | None = None,
        state: np.ndarray | None = None,
    ) -> Scored:
        """Score a batch through the shared feature function; one verdict per transaction, in order.

        `started_at` (seconds since the epoch, one per transaction) is when each transaction's deadline starts:
        its event time, or its Kafka timestamp (the pipeline's choice); without it, the event time. `state`: the
        account state of each transaction (the account tables'), which a model of the account_state feature set
        needs and any other ignores.
        """
        if not transactions:
            return Scored.empty(len(self.model.feature_names))
        feature_set = self.model.feature_set
        features = build_features(
            columns_from_transactions(transactions), feature_set, state if uses_account_state(feature_set) else None
        )
        booster = self.model.booster
        scores = np.asarray(booster.predict(features, num_threads=1), dtype=np.float64)
        scored_at = now or datetime.now(UTC)
        model, review = self.model, self.review_threshold
        decided = decide(transactions, scores, model.threshold, review, self.policy, scored_at.timestamp(), started_at)
        reasons = self._reasons(features, scores)
        verdicts = [
            verdict_bytes(
                Verdict(
                    tx.tx_id,
                    decision,
                    score,
                    model.threshold,
                    model.name,
                    model.version,
                    scored_at,
                    why,
                    tx.event_time,
                    review,
                    "model" if entry is None else "list",
                    entry,
                    is_late,
                )
            )
            for tx, decision, score, why, is_late, entry in zip(
                transactions,
                decided.decisions,
                scores.tolist(),
                reasons,
                decided.late.tolist(),
                decided.entries,
                strict=True,
            )
        ]
        return Scored(verdicts, scores, decided.blocked, decided.reviewed, decided.late, features, decided.listed)

    def _reasons(self, features: np.ndarray, scores: np.ndarray) -> list[list[Reason]]:
        # Exact SHAP values cost far more than the prediction itself, so only verdicts that may matter
        # (blocked, reviewed, or scoring above explain_min_score) are explained; the rest carry no reasons.
        reasons: list[list[Reason]] = [[] for _ in range(len(scores))]
        if not self.reasons:
            return reasons
        least = min(self.explain_min_score, self.model.threshold, self.review_threshold or 1.0)
        explain = np.flatnonzero(scores >= least)
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
        names, raising, lowering = self._names, self._raising, self._lowering
        return [
            [
                Reason(names[j], round(v, 6), *(raising[j] if v > 0 else lowering[j]))
                for j, v in zip(row_j, row_v, strict=True)
                if v != 0
            ]
            for row_j, row_v in zip(top.tolist(), values.tolist(), strict=True)
        ]
