"""Scores -> decisions: the version's thresholds, the review tier, the desk's lists and the verdict deadline.

How a score becomes a decision (docs/SCORER.md, "Decisions"): `block` when score >= the version's block threshold;
with the review tier on, `review` when score >= its review threshold; else `allow`. A list entry in force for the
sender or the recipient overrides that (stream_app/lists.py has the precedence). A verdict made later than the
transaction's event time + the deadline is still written, marked `late`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.settings import Settings
from schemas.transaction import Transaction
from schemas.verdict import Decision, ListHit
from stream_app.lists import ListTable
from stream_app.reasons import ReasonCatalog, load_catalog


@dataclass(frozen=True)
class DecisionPolicy:
    """What turns scores into decisions besides the version's block threshold: the fraud desk's levers."""

    review_tier: bool = False  # give `review` between the version's review and block thresholds
    deadline_s: float = math.inf  # a verdict made later than event time + this is marked late
    lists: ListTable | None = None  # entries that override the model
    catalog: ReasonCatalog | None = None  # the reason texts (English when None)

    @classmethod
    def from_settings(cls, settings: Settings, lists: ListTable | None = None) -> DecisionPolicy:
        return cls(
            review_tier=settings.review_tier,
            deadline_s=settings.verdict_deadline_ms / 1000.0,
            lists=lists,
            catalog=load_catalog(settings.reason_language, settings.reason_catalog_dir),
        )


@dataclass(frozen=True, slots=True)
class Decided:
    """One batch's decisions, in transaction order."""

    decisions: list[Decision]
    blocked: np.ndarray  # decision `block` (by the model or a list)
    reviewed: np.ndarray  # decision `review`
    late: np.ndarray  # made after event time + deadline
    entries: list[ListHit | None]  # the list entry that decided, None where the model did
    listed: dict[str, int]  # decisions made by a list entry, by action


def decide(
    transactions: Sequence[Transaction],
    scores: np.ndarray,
    threshold: float,
    review_threshold: float | None,
    policy: DecisionPolicy,
    at: float,
    started_at: np.ndarray | None = None,
) -> Decided:
    """The decisions of a scored batch at time `at` (seconds since the epoch); `review_threshold` None: no review.

    `started_at` (one per transaction) is when each deadline starts: the pipeline passes the event time, or the
    Kafka timestamp when there is none; without it, the event time (no event time: never late).
    """
    blocked = scores >= threshold
    if review_threshold is None:
        reviewed = np.zeros(len(scores), dtype=bool)
    else:
        reviewed = (scores >= review_threshold) & ~blocked
    decisions: list[Decision] = np.where(blocked, "block", np.where(reviewed, "review", "allow")).tolist()
    entries: list[ListHit | None] = [None] * len(decisions)
    listed: dict[str, int] = {}
    for i, hit in policy.lists.matches(transactions, at) if policy.lists is not None else ():
        entries[i] = hit
        decisions[i] = hit.action
        blocked[i] = hit.action == "block"
        reviewed[i] = hit.action == "review"
        listed[hit.action] = listed.get(hit.action, 0) + 1
    late = _late(transactions, at, started_at, policy.deadline_s)
    return Decided(decisions, blocked, reviewed, late, entries, listed)


def _late(
    transactions: Sequence[Transaction], at: float, started_at: np.ndarray | None, deadline_s: float
) -> np.ndarray:
    if math.isinf(deadline_s):
        return np.zeros(len(transactions), dtype=bool)
    if started_at is None:
        started_at = np.fromiter(
            (tx.event_time.timestamp() if tx.event_time else math.nan for tx in transactions),
            dtype=np.float64,
            count=len(transactions),
        )
    with np.errstate(invalid="ignore"):
        return np.asarray(at - started_at > deadline_s)  # no start time (NaN): never late
