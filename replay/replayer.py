"""The operator's load test: publish PaySim transactions at a steady rate and read the verdicts back.

Publishing: confluent-kafka (batched, lz4, key = originating account), paced in 5 ms ticks so the offered
rate is steady, or as fast as possible, or in PaySim time (`speedup` seconds per step). Each message carries
`event_time` = its send time, so a verdict's latency is measured from the moment it was offered.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson
import polars as pl
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from core.errors import BrokerError
from core.settings import Settings
from kafka_ops.clients import librdkafka_config
from replay.report import Received, Sent
from schemas.transaction import PAYSIM_COLUMNS

log = logging.getLogger(__name__)

TICK_S = 0.005


@dataclass(frozen=True)
class Pace:
    """How fast to publish: `rate` tx/s, or PaySim time (`speedup` seconds per step), or flat out."""

    rate: float | None = None
    speedup: float | None = None


@dataclass
class ReplayLog:
    """What one replay sent and what came back."""

    sent: list[Sent] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    send_seconds: float = 0.0


def check_broker(settings: Settings, timeout_s: float = 8.0) -> None:
    """A one-line BrokerError unless the broker answers and the topics exist."""
    admin = AdminClient({**librdkafka_config(settings), "log_level": 0})
    try:
        topics = admin.list_topics(timeout=timeout_s).topics
    except KafkaException:
        raise BrokerError(f"Kafka at {settings.kafka_bootstrap} did not answer within {timeout_s:.0f} s") from None
    missing = [t for t in (settings.topic_transactions, settings.topic_verdicts) if t not in topics]
    if missing:
        raise BrokerError(f"topic(s) {', '.join(missing)} missing: run `momoguard topics create`")


def encode(frame: pl.DataFrame, run_id: str) -> Iterator[tuple[Sent, bytes, bytes]]:
    """(what was sent, key, message without event_time) per row; tx_ids are prefixed with the run id."""
    for row in frame.select("tx_id", *PAYSIM_COLUMNS).iter_rows(named=True):
        tx_id = f"{run_id}-{row['tx_id']}"
        body = orjson.dumps({**row, "tx_id": tx_id})
        yield Sent(tx_id, 0.0, row["isFraud"], float(row["amount"])), str(row["nameOrig"]).encode(), body[:-1]


def produce_waiting(producer: Producer, topic: str, value: bytes, key: bytes | None) -> None:
    """Produce one message, waiting while the producer's local queue is full (the broker slow or away)."""
    while True:
        try:
            producer.produce(topic, value=value, key=key)
            return
        except BufferError:
            producer.poll(0.01)


def stamped(body: bytes, sent_at: float) -> bytes:
    """A message from `encode` with its event_time: the body was left open, so stamping re-encodes nothing."""
    return body + b',"event_time":' + repr(sent_at).encode() + b"}"


class VerdictReader(threading.Thread):
    """Reads `verdicts` from their current end, keeping only this run's tx_ids."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        super().__init__(name="verdict-reader", daemon=True)
        self.prefix = f"{run_id}-".encode()
        self.received: list[Received] = []
        self.stopping = threading.Event()
        self.consumer = Consumer(
            {
                **librdkafka_config(settings),
                "group.id": f"momoguard-replay-{run_id}",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )
        partitions = self.consumer.list_topics(settings.topic_verdicts, timeout=10).topics[settings.topic_verdicts]
        assignment = []
        for p in partitions.partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(settings.topic_verdicts, p), timeout=10)
            assignment.append(TopicPartition(settings.topic_verdicts, p, high))
        self.consumer.assign(assignment)  # from the end as of now: only this run's verdicts follow

    def run(self) -> None:
        prefix = self.prefix
        try:
            while not self.stopping.is_set():
                # consume() returns when the batch is full or the timeout is up: a short timeout keeps the
                # receive time (the latency measured) within about a millisecond of the verdict's arrival.
                for message in self.consumer.consume(1000, timeout=0.001):
                    value = message.value()
                    if message.error() or not value or prefix not in value[:120]:
                        continue
                    now = time.time()
                    verdict = orjson.loads(value)
                    self.received.append(
                        Received(
                            verdict["tx_id"],
                            now,
                            verdict["decision"],
                            str(verdict["model_version"]),
                            bool(verdict.get("late", False)),
                            str(verdict.get("decided_by", "model")),
                        )
                    )
        finally:
            self.consumer.close()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off within the block (back to what it was after)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@collector_paused()
def replay(
    settings: Settings,
    frame: pl.DataFrame,
    pace: Pace,
    *,
    wait_s: float = 60.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReplayLog:
    """Publish the frame's rows as transactions, then wait up to `wait_s` for their verdicts.

    Python's cyclic collector is off meanwhile: its pauses would be measured as the scorer's latency. A full pass
    over this process's heap (the frame's caller, MLflow, polars: ~350,000 objects) takes ~250 ms, and the
    replay's own records (two a transaction) set one off every ~40,000 transactions. Nothing the replay keeps is
    cyclic, so reference counting frees it all the same; the collector is back on once the verdicts are in.
    """
    check_broker(settings)
    run_id = uuid.uuid4().hex[:8]
    reader = VerdictReader(settings, run_id)
    reader.start()
    producer = Producer(
        {
            **librdkafka_config(settings),
            "linger.ms": 2,
            "compression.type": "lz4",
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "acks": "all",
            "log_level": 0,
        }
    )
    out = ReplayLog()
    topic = settings.topic_transactions
    offsets = schedule(frame, pace)
    started = time.monotonic()
    for i, (sent, key, body) in enumerate(encode(frame, run_id)):
        if offsets is not None:
            ahead = started + offsets[i] - time.monotonic()
            if ahead > TICK_S:  # sleeping in ticks keeps the rate steady without busy waiting
                time.sleep(ahead)
        now = time.time()
        produce_waiting(producer, topic, stamped(body, now), key)
        out.sent.append(Sent(sent.tx_id, now, sent.is_fraud, sent.amount))
        if i % 1000 == 0:
            producer.poll(0)
            if on_progress:
                on_progress(len(out.sent), len(reader.received))
    if producer.flush(30):
        raise BrokerError("transactions were not acknowledged by the broker within 30 s")
    out.send_seconds = time.monotonic() - started
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if on_progress:
            on_progress(len(out.sent), len(reader.received))
        if len({r.tx_id for r in reader.received}) >= len(out.sent):
            time.sleep(1.0)  # let late duplicates arrive, so they are counted
            break
        time.sleep(0.2)
    reader.stopping.set()
    reader.join(10)
    out.received = list(reader.received)
    return out


def schedule(frame: pl.DataFrame, pace: Pace) -> list[float] | None:
    """Each row's send time in seconds from the start, or None to send flat out."""
    if pace.rate:
        return [i / pace.rate for i in range(frame.height)]
    if pace.speedup:
        # A step lasts `speedup` seconds; its rows are spread evenly over it.
        timed = frame.select(
            (pl.col("step") - pl.col("step").min()).alias("hour"),
            (pl.int_range(pl.len()).over("step") / pl.len().over("step")).alias("within"),
        )
        return ((timed["hour"] + timed["within"]) * pace.speedup).to_list()
    return None
