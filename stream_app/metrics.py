"""The scorer's Prometheus metrics, all prefixed `momoguard_`, in a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (0.99, 0.999)


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
            "momoguard_batch_size", "Messages per micro-batch.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.scoring_seconds = Histogram(
            "momoguard_scoring_seconds",
            "Time to parse, featurise and score one micro-batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "momoguard_end_to_end_latency_seconds",
            "From a transaction's event_time to its verdict acknowledged by the broker.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.score = Histogram("momoguard_score", "Distribution of fraud scores.", buckets=_SCORE_BUCKETS, registry=r)
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
        for decision in ("block", "allow"):
            self.scored.labels(decision)
        for outcome in ("loaded", "failed"):
            self.reloads.labels(outcome)

    def set_model(self, name: str, version: str, threshold: float, loaded_at: float) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version).set(1)
        self.model_threshold.set(threshold)
        self.model_loaded_at.set(loaded_at)
