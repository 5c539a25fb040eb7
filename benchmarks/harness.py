"""What every benchmark stands on: fresh topics, a preloaded backlog, a scorer's environment, verdicts read back."""

from __future__ import annotations

import logging
import math
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import polars as pl
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from core.errors import MomoGuardError
from core.settings import PROJECT_ROOT, Settings
from kafka_ops.clients import librdkafka_config
from stream_app.dashboard import Buckets, bucket_increase, quantile
from stream_app.process import ScorerProcess

log = logging.getLogger(__name__)

T = TypeVar("T")

REPORT = PROJECT_ROOT / "reports" / "bench.json"
PARTITIONS = 8


@dataclass(frozen=True)
class BenchTopics:
    transactions: str
    verdicts: str
    dlq: str
    scored: str  # the closed loop's: the scored-transaction records, the challenger's verdicts
    shadow: str
    credits: str  # the account tables' repartition topic (used only by a scorer that keeps them)

    def all(self) -> list[str]:
        return [self.transactions, self.verdicts, self.dlq, self.scored, self.shadow, self.credits]


@contextmanager
def bench_topics(settings: Settings, name: str) -> Iterator[BenchTopics]:
    """Fresh topics for one part of the bench, deleted afterwards."""
    run = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    topics = BenchTopics(
        *(f"{run}-{kind}" for kind in ("transactions", "verdicts", "dlq", "scored", "shadow", "credits"))
    )
    admin = AdminClient({**librdkafka_config(settings), "log_level": 0})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=PARTITIONS if t != topics.dlq else 1, replication_factor=1) for t in topics.all()]
    )
    for future in futures.values():
        future.result(30)
    try:
        yield topics
    finally:
        delete_topics(settings, topics.all())


def delete_topics(settings: Settings, names: list[str]) -> None:
    admin = AdminClient({**librdkafka_config(settings), "log_level": 0})
    for future in admin.delete_topics(names).values():
        try:
            future.result(30)
        except Exception as error:  # a leftover topic is untidy, not a failed benchmark
            log.warning("could not delete a bench topic: %s", error)


def scorer_env(settings: Settings, topics: BenchTopics, group: str, web_port: int) -> dict[str, str]:
    return {
        "MOMOGUARD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MOMOGUARD_TOPIC_TRANSACTIONS": topics.transactions,
        "MOMOGUARD_TOPIC_VERDICTS": topics.verdicts,
        "MOMOGUARD_TOPIC_DLQ": topics.dlq,
        "MOMOGUARD_TOPIC_SCORED": topics.scored,
        "MOMOGUARD_TOPIC_SHADOW": topics.shadow,
        "MOMOGUARD_TOPIC_CREDITS": topics.credits,
        "MOMOGUARD_SCORED_PARTITIONS": str(PARTITIONS),
        "MOMOGUARD_SHADOW_PARTITIONS": str(PARTITIONS),
        "MOMOGUARD_TRANSACTIONS_PARTITIONS": str(PARTITIONS),
        "MOMOGUARD_VERDICTS_PARTITIONS": str(PARTITIONS),
        "MOMOGUARD_CONSUMER_GROUP": group,
        "MOMOGUARD_WEB_PORT": str(web_port),
        "MOMOGUARD_MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MOMOGUARD_RUN_DIR": str(settings.run_dir),
    }


def preload(settings: Settings, topic: str, frame: pl.DataFrame) -> int:
    """Publish every row to `topic` before any scorer starts: a backlog to drain at full speed."""
    from replay.replayer import encode, stamped

    producer = Producer(
        {
            **librdkafka_config(settings),
            "linger.ms": 20,
            "compression.type": "lz4",
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 2_000_000,
            "log_level": 0,
        }
    )
    now = time.time()
    count = 0
    for _, key, body in encode(frame, "bench"):
        producer.produce(topic, value=stamped(body, now), key=key)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise MomoGuardError("the bench backlog was not acknowledged by the broker")
    return count


def verdict_count(settings: Settings, topic: str) -> int:
    """Messages in `topic` now; 0 while a partition has no leader yet (a topic just made, on a busy machine)."""
    consumer = Consumer({**librdkafka_config(settings), "group.id": "bench-watermarks", "log_level": 0})
    try:
        total = 0
        for p in range(PARTITIONS):
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            except KafkaException as error:
                if _not_yet(error):
                    return 0  # the caller asks again
                raise
            total += high - low
        return total
    finally:
        consumer.close()


# A topic just made, or a broker busy electing leaders: a watermark query may fail with these for a while.
_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TIMED_OUT}


def _not_yet(error: KafkaException) -> bool:
    cause = error.args[0] if error.args else None
    return isinstance(cause, KafkaError) and (cause.retriable() or cause.code() in _TRANSIENT)


def read_topic(settings: Settings, topic: str, expect: int, take: Callable[[Message], T]) -> list[T]:
    """`take(message)` of every message in `topic`, read from its start until `expect` arrived (or 120 s)."""
    consumer = Consumer(
        {
            **librdkafka_config(settings),
            "group.id": f"bench-read-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    consumer.subscribe([topic])
    taken: list[T] = []
    deadline = time.monotonic() + 120
    try:
        while len(taken) < expect and time.monotonic() < deadline:
            taken += [take(m) for m in consumer.consume(5000, timeout=0.5) if m.error() is None]
    finally:
        consumer.close()
    return taken


def verdict_timestamps(settings: Settings, topic: str, expect: int) -> np.ndarray:
    """The broker-side create times (seconds) of every verdict in `topic`, in order."""
    return np.sort(np.asarray(read_topic(settings, topic, expect, lambda m: m.timestamp()[1] / 1000.0)))


def sustained_tps(stamps: np.ndarray) -> float:
    """Throughput over the middle 90 % of the verdicts: start-up and the last stragglers left out."""
    if stamps.size < 20:
        return float("nan")
    low, high = np.quantile(stamps, [0.05, 0.95])
    return float(0.9 * stamps.size / max(high - low, 1e-3))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, scorer: ScorerProcess | None = None) -> None:
    """Return once `predicate()` holds; MomoGuardError if the time runs out or the scorer exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if scorer is not None and scorer.proc.poll() is not None:
            raise MomoGuardError(f"{what}: the scorer exited with {scorer.proc.returncode}: {scorer.log_tail(500)}")
        if time.monotonic() > deadline:
            raise MomoGuardError(f"{what}: timed out after {timeout:.0f} s")
        time.sleep(0.2)


def stop_quietly(scorer: ScorerProcess) -> None:
    """SIGTERM and wait (SIGKILL after a minute): a benchmark's scorer is done with."""
    try:
        scorer.stop()
    except Exception as error:  # a scorer that had to be killed spoils no figure already taken
        log.warning("stopping a bench scorer: %s", error)


@dataclass(frozen=True)
class HistogramReading:
    """One histogram of a worker's /metrics at one moment: cumulative buckets (upper bound, count) and the sum."""

    buckets: Buckets
    total: float

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def since(self, earlier: HistogramReading) -> HistogramReading:
        """The observations made between `earlier` and this reading."""
        return HistogramReading(bucket_increase(earlier.buckets, self.buckets), self.total - earlier.total)

    def summary_ms(self) -> DelayMs | None:
        """Mean (exact, from the sum) and p50/p99 (Prometheus's interpolation in the buckets), in ms."""
        p50, p99 = quantile(0.5, self.buckets), quantile(0.99, self.buckets)
        if not self.count or p50 is None or p99 is None:
            return None
        up_to_last_bound = max((n for bound, n in self.buckets if not math.isinf(bound)), default=0.0)
        return DelayMs(
            count=int(self.count),
            mean=1000 * self.total / self.count,
            p50=1000 * p50,
            p99=1000 * p99,
            beyond_last_bucket=int(self.count - up_to_last_bound),
        )


@dataclass(frozen=True)
class DelayMs:
    """What a latency histogram says over a stretch of a run, in milliseconds."""

    count: int
    mean: float
    p50: float
    p99: float
    beyond_last_bucket: int  # observations above the highest finite bound (their p99 reads as that bound)


def read_histogram(web: str, name: str, timeout: float = 5.0) -> HistogramReading:
    """Histogram `name` as the worker at `web` (http://host:port) exposes it on /metrics now."""
    with urllib.request.urlopen(f"{web}/metrics", timeout=timeout) as response:
        exposition = response.read().decode()
    buckets: list[tuple[float, float]] = []
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                buckets.append((float(sample.labels["le"]), float(sample.value)))
            elif sample.name == f"{name}_sum":
                total = float(sample.value)
    if not buckets:
        raise MomoGuardError(f"{web}/metrics has no histogram {name}")
    return HistogramReading(tuple(sorted(buckets)), total)
