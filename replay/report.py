"""Join what a replay sent with the verdicts that came back, and sum it up: counts, latency, confusion.

The confusion counts `block` as the positive answer; `review` (a step-up check, when the scorer's review tier is
on) is counted apart, in `decisions` and `recall_with_review` (fraud reviewed or blocked).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Sent:
    """One transaction as the replayer published it."""

    tx_id: str
    sent_at: float  # seconds since the epoch, also its event_time
    is_fraud: int | None
    amount: float


@dataclass(frozen=True, slots=True)
class Received:
    """One verdict as the replayer read it back."""

    tx_id: str
    received_at: float
    decision: str
    model_version: str
    late: bool = False  # made after event time + the scorer's deadline
    decided_by: str = "model"  # or "list": an entry of the desk's lists


@dataclass(frozen=True)
class Latency:
    """Publish-to-verdict latency of the first verdict of each transaction, in milliseconds."""

    p50: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True)
class Confusion:
    """Verdicts against the labels of the transactions that carry one."""

    tp: int
    fp: int
    tn: int
    fn: int


@dataclass
class ReplayReport:
    """What a replay sent and what came back: the JSON report, field by field."""

    sent: int
    verdicts: int
    missing: int
    duplicates: int
    offered_rate_tps: float | None
    achieved_rate_tps: float | None
    answered_rate_tps: float | None
    latency_ms: Latency
    confusion: Confusion
    precision: float | None
    recall: float | None
    fraud_amount_recall: float | None
    model_versions: dict[str, int]
    decisions: dict[str, int] = field(default_factory=dict)  # first verdicts by decision: allow, review, block
    recall_with_review: float | None = None  # labelled fraud reviewed or blocked
    decided_by_list: int = 0  # first verdicts a list entry decided
    late: int = 0  # first verdicts marked late
    # Where the transactions came from: a data file's read report (rows read, skipped) or the generator's seed.
    input: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON values (an unmeasured figure, NaN, is null)."""
        return _finite(asdict(self))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def build_report(
    sent: Sequence[Sent],
    received: Iterable[Received],
    *,
    offered_rate_tps: float | None,
    send_seconds: float,
) -> ReplayReport:
    """The replay report, computed from the join on tx_id.

    A verdict for a tx_id that was not sent in this replay is ignored; a second verdict for a tx_id counts as
    a duplicate (at-least-once delivery) and its latency is not counted again.
    """
    by_id = {s.tx_id: s for s in sent}
    first: dict[str, Received] = {}
    duplicates = 0
    for verdict in received:
        if verdict.tx_id not in by_id:
            continue
        if verdict.tx_id in first:
            duplicates += 1
            continue
        first[verdict.tx_id] = verdict

    latencies_ms = [(v.received_at - by_id[t].sent_at) * 1000.0 for t, v in first.items()]
    tp = fp = tn = fn = reviewed_fraud = 0
    fraud_amount = blocked_fraud_amount = 0.0
    for tx_id, verdict in first.items():
        tx = by_id[tx_id]
        blocked = verdict.decision == "block"
        if tx.is_fraud:
            fraud_amount += tx.amount
            if blocked:
                tp += 1
                blocked_fraud_amount += tx.amount
            else:
                fn += 1
                reviewed_fraud += verdict.decision == "review"
        elif tx.is_fraud is not None:
            fp += blocked
            tn += not blocked
    versions: dict[str, int] = {}
    decisions = dict.fromkeys(("allow", "review", "block"), 0)
    for verdict in first.values():
        versions[verdict.model_version] = versions.get(verdict.model_version, 0) + 1
        decisions[verdict.decision] = decisions.get(verdict.decision, 0) + 1
    span = _span(sent, first.values())
    return ReplayReport(
        sent=len(by_id),
        verdicts=len(first) + duplicates,
        missing=len(by_id) - len(first),
        duplicates=duplicates,
        offered_rate_tps=offered_rate_tps,
        achieved_rate_tps=len(by_id) / send_seconds if send_seconds > 0 else None,
        answered_rate_tps=len(first) / span if span > 0 else None,
        latency_ms=Latency(
            p50=percentile(latencies_ms, 50),
            p95=percentile(latencies_ms, 95),
            p99=percentile(latencies_ms, 99),
            max=max(latencies_ms) if latencies_ms else math.nan,
        ),
        confusion=Confusion(tp, fp, tn, fn),
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        fraud_amount_recall=_ratio(blocked_fraud_amount, fraud_amount),
        model_versions=dict(sorted(versions.items())),
        decisions=decisions,
        recall_with_review=_ratio(tp + reviewed_fraud, tp + fn),
        decided_by_list=sum(v.decided_by == "list" for v in first.values()),
        late=sum(v.late for v in first.values()),
    )


def _span(sent: Sequence[Sent], answered: Iterable[Received]) -> float:
    times = [v.received_at for v in answered]
    if not sent or not times:
        return 0.0
    return max(times) - min(s.sent_at for s in sent)


def latency_series(sent: Sequence[Sent], received: Iterable[Received]) -> tuple[list[float], list[float]]:
    """(seconds since the first send, latency in ms) of each first verdict, in send order, for the plot."""
    by_id = {s.tx_id: s for s in sent}
    seen: set[str] = set()
    points: list[tuple[float, float]] = []
    start = min((s.sent_at for s in sent), default=0.0)
    for verdict in received:
        tx = by_id.get(verdict.tx_id)
        if tx is None or verdict.tx_id in seen:
            continue
        seen.add(verdict.tx_id)
        points.append((tx.sent_at - start, (verdict.received_at - tx.sent_at) * 1000.0))
    points.sort()
    return [p[0] for p in points], [p[1] for p in points]
