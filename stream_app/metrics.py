"""The scorer's Prometheus metrics, all prefixed `momoguard_`, in a registry of their own."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import get_args

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from schemas.verdict import Decision, ListAction

# Latency buckets from 1 ms to 10 s: the target is a p99 under 50 ms.
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    10,
)
# A credit waits behind whatever backlog its partition has: seconds to hours after an outage, not only milliseconds
# (a drain of 200,000 put half of them past 10 s, the latency buckets' last bound; docs/ACCOUNT_STATE.md).
_CREDIT_DELAY_BUCKETS = (*_LATENCY_BUCKETS, 30, 60, 300, 900, 3600)
RELOAD_OUTCOMES = ("loaded", "unreachable", "unusable")
DECISIONS: tuple[str, ...] = get_args(Decision)
LIST_ACTIONS: tuple[str, ...] = get_args(ListAction)
# What became of each record of the lists topic: an entry put in place, a tombstone applied, or ignored.
LIST_RECORD_OUTCOMES = ("applied", "removed", "malformed")
CLOSED_LOOP_STEPS = ("shadow", "log", "drift")
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# Score buckets: most genuine transactions score below 0.001 and the champion's threshold is often below 0.2, so the
# low end gets decades (to see drift and where the threshold cuts) before steps of 0.05 and the confident top.
_SCORE_BUCKETS = (0.0001, 0.001, 0.01, 0.025) + tuple(round(0.05 * i, 2) for i in range(1, 20)) + (0.99, 0.999)


class BulkHistogram(Collector):
    """A Prometheus histogram fed a whole batch at a time (numpy), not one `observe` call per value.

    prometheus-client's Histogram costs a few microseconds per observation; at tens of thousands of
    transactions a second, counting a batch with one `searchsorted` is what keeps metrics off the hot path.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.asarray(sorted(buckets), dtype=np.float64)
        self._counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)  # last: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        if not values.size:
            return
        # side="left": a value equal to a bound counts in that bound's bucket (le = less or equal).
        counts = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        family = HistogramMetricFamily(self.name, self.documentation)
        buckets = [(_label(b), float(c)) for b, c in zip(self.bounds.tolist(), cumulative, strict=False)]
        family.add_metric([], [*buckets, ("+Inf", float(cumulative[-1]))], total)
        yield family

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation)


def _label(bound: float) -> str:
    return repr(float(bound))


class ScorerMetrics:
    """Every metric one worker exports on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.scored = Counter(
            "momoguard_transactions_scored", "Transactions scored, by decision.", ["decision"], registry=r
        )
        self.invalid = Counter(
            "momoguard_invalid_messages",
            "Messages sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "momoguard_batch_size",
            "Messages per scored batch (one fetch of the transactions topic).",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.scoring_seconds = Histogram(
            "momoguard_scoring_seconds",
            "Time to parse, featurise and score one micro-batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end = BulkHistogram(
            "momoguard_end_to_end_latency_seconds",
            "From a transaction's event_time to its verdict acknowledged by the broker.",
            _LATENCY_BUCKETS,
            r,
        )
        self.score = BulkHistogram("momoguard_score", "Distribution of fraud scores.", _SCORE_BUCKETS, r)
        self.model_info = Gauge(
            "momoguard_model_info",
            "The model version in use (value 1).",
            ["model_name", "model_version"],
            registry=r,
        )
        self.model_threshold = Gauge("momoguard_model_threshold", "Block threshold in use.", registry=r)
        self.model_loaded_at = Gauge(
            "momoguard_model_loaded_timestamp_seconds", "When the model in use was loaded.", registry=r
        )
        self.reloads = Counter("momoguard_model_reloads", "Champion reloads, by outcome.", ["outcome"], registry=r)
        self.lag = Gauge(
            "momoguard_consumer_lag",
            "Messages behind the end of each partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.in_flight = Gauge(
            "momoguard_in_flight_transactions",
            "Transactions read and not yet committed (at most MOMOGUARD_IN_FLIGHT_WINDOW; redone after a crash).",
            registry=r,
        )
        self.delivery_errors = Counter(
            "momoguard_delivery_errors",
            "Failed attempts to produce a record, by topic and Kafka error (each is retried or dead-lettered).",
            ["topic", "error"],
            registry=r,
        )
        self.undeliverable = Counter(
            "momoguard_undeliverable_records",
            "Records the broker refused for good that had no dead letter to fall back on (logged, then skipped).",
            ["topic"],
            registry=r,
        )
        self.last_progress = Gauge(
            "momoguard_last_progress_timestamp_seconds",
            "When the worker last finished something: a batch read, or a record acknowledged.",
            registry=r,
        )
        self.stalled = Gauge(
            "momoguard_stalled",
            "1 while work waits (lag or unacknowledged records) and nothing progressed for MOMOGUARD_STALL_TIMEOUT_S.",
            registry=r,
        )
        self.topic_missing = Gauge(
            "momoguard_topic_missing",
            "1 while a topic the scorer writes to does not exist on the broker.",
            ["topic"],
            registry=r,
        )
        # --- The account tables (docs/ACCOUNT_STATE.md) ---
        self.account_events = Counter(
            "momoguard_account_events",
            "Account table events: credit_applied, credit_repeated (produced twice, counted once), send_skipped "
            "(below a partition's mark: scored and applied before a crash or takeover).",
            ["event"],
            registry=r,
        )
        self.credit_delay = BulkHistogram(
            "momoguard_credit_delay_seconds",
            "From a credit's production (its transaction scored) to its application on the receiving account's "
            "partition: how stale the received_* features are.",
            _CREDIT_DELAY_BUCKETS,
            r,
        )
        # --- The fraud desk's levers: review tier, lists, verdict deadline ---
        self.model_review_threshold = Gauge(
            "momoguard_model_review_threshold",
            "Review threshold in use (0: no review tier: review off, or the version has none).",
            registry=r,
        )
        self.late = Counter(
            "momoguard_late_verdicts",
            "Verdicts made later than event time + MOMOGUARD_VERDICT_DEADLINE_MS (still written, marked late).",
            registry=r,
        )
        self.list_decisions = Counter(
            "momoguard_list_decisions",
            "Verdicts decided by a list entry rather than the model, by the entry's action.",
            ["action"],
            registry=r,
        )
        self.list_entries = Gauge(
            "momoguard_list_entries", "List entries in force (not expired) on this worker, by action.", ["action"],
            registry=r,
        )  # fmt: skip
        self.list_records = Counter(
            "momoguard_list_records",
            "Records read from the lists topic, by outcome (applied, removed, malformed: logged and ignored).",
            ["outcome"],
            registry=r,
        )
        self.lists_updated = Gauge(
            "momoguard_lists_updated_timestamp_seconds", "When this worker last applied a lists record.", registry=r
        )
        # --- the closed loop (docs/FEEDBACK.md): the scored-transaction log, the shadow challenger, drift -------
        self.scored_log_records = Counter(
            "momoguard_scored_log_records",
            "Scored transactions produced to the scored topic, for the log sink.",
            registry=r,
        )
        self.closed_loop_errors = Counter(
            "momoguard_closed_loop_errors",
            "Batches whose shadow scoring, log record or drift count failed (the champion's verdicts are unaffected).",
            ["step"],
            registry=r,
        )
        self.shadow_model_info = Gauge(
            "momoguard_shadow_model_info",
            "The challenger version shadowing the champion (value 1; absent with no challenger).",
            ["model_name", "model_version"],
            registry=r,
        )
        self.shadow_decisions = Counter(
            "momoguard_shadow_decisions",
            "Transactions scored by both models, by the champion's and the challenger's decision.",
            ["champion", "challenger"],
            registry=r,
        )
        self.shadow_score = BulkHistogram(
            "momoguard_shadow_score", "Distribution of the challenger's fraud scores.", _SCORE_BUCKETS, r
        )
        self.shadow_reloads = Counter(
            "momoguard_shadow_reloads", "Challenger loads, by outcome.", ["outcome"], registry=r
        )
        self.drift_psi = Gauge(
            "momoguard_drift_psi",
            "Population stability index of each feature and of the score over the drift window, against the "
            "champion's training reference.",
            ["input"],
            registry=r,
        )
        self.drift_window = Gauge(
            "momoguard_drift_window_transactions", "Transactions in the drift window.", registry=r
        )
        for champion_decision in DECISIONS:
            for challenger_decision in DECISIONS:
                self.shadow_decisions.labels(champion_decision, challenger_decision)
        for step in CLOSED_LOOP_STEPS:
            self.closed_loop_errors.labels(step)
        for outcome in RELOAD_OUTCOMES:
            self.shadow_reloads.labels(outcome)
        for decision in DECISIONS:
            self.scored.labels(decision)
        for action in LIST_ACTIONS:
            self.list_decisions.labels(action)
            self.list_entries.labels(action)
        for outcome in LIST_RECORD_OUTCOMES:
            self.list_records.labels(outcome)
        # unreachable: a poll or a download failed, retried at the next poll; unusable: the champion fails
        # `registry.check_version` (counted once per version), the worker keeps its model.
        for outcome in RELOAD_OUTCOMES:
            self.reloads.labels(outcome)

    def set_model(
        self, name: str, version: str, threshold: float, loaded_at: float, review_threshold: float | None = None
    ) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version).set(1)
        self.model_threshold.set(threshold)
        self.model_loaded_at.set(loaded_at)
        self.model_review_threshold.set(review_threshold or 0.0)
