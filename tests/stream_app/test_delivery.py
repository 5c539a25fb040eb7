"""The deliverer's per-record outcomes, against a fake producer: every record settles, none holds up the rest.

The real producer and broker are in tests/stream_app/test_hostile.py; here each failure is made on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from core.settings import Settings
from stream_app.delivery import Deliverer
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import Record

Rule = Callable[[str, bytes], KafkaError | None]


class Delivered:
    """The part of a delivered Message the deliverer reads."""

    def __init__(self, offset: int | None) -> None:
        self._offset = offset

    def offset(self) -> int | None:
        return self._offset


class FakeProducer:
    """Acknowledges on poll(); `refuse` may fail a delivery report, `raise_on_produce` may refuse at produce()."""

    made: list[FakeProducer] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.queue: list[tuple[str, bytes, Any]] = []
        self.delivered: list[tuple[str, bytes]] = []
        self.refuse: Rule = lambda topic, value: None
        self.raise_on_produce: Rule = lambda topic, value: None
        self.unconfirmed: Callable[[str, bytes], bool] = lambda topic, value: False
        self.purged = False
        FakeProducer.made.append(self)

    def produce(
        self, topic: str, value: bytes, key: bytes | None, headers: Any, on_delivery: Any, partition: int = -1
    ) -> None:
        error = self.raise_on_produce(topic, value)
        if error is not None:
            raise KafkaException(error)
        self.queue.append((topic, value, on_delivery))

    def poll(self, timeout: float) -> int:
        queued, self.queue = self.queue, []
        for topic, value, on_delivery in queued:
            error = KafkaError(KafkaError._PURGE_QUEUE) if self.purged else self.refuse(topic, value)
            offset: int | None = len(self.delivered)
            if error is None and self.unconfirmed(topic, value):
                offset = None  # acknowledged, but not written (librdkafka's "duplicate sequence")
            elif error is None:
                self.delivered.append((topic, value))
            on_delivery(error, Delivered(offset))
        return len(queued)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        self.purged = True

    def flush(self, timeout: float) -> int:
        return 0


@pytest.fixture(autouse=True)
def _fresh_fakes() -> None:
    FakeProducer.made.clear()


def dead_letter_for(record: Record, error: str) -> Record | None:
    if record.topic == "dlq":
        return None
    return Record("dlq", record.key, b"dead:" + record.value, [("momoguard.error", error.encode())])


def deliverer(metrics: ScorerMetrics, attempts: int = 3) -> Deliverer:
    return Deliverer(
        {"bootstrap.servers": "unused:9"},
        metrics,
        rescue=dead_letter_for,
        attempts=attempts,
        retry_delay_s=0.001,
        producer_factory=FakeProducer,
    )


async def settle(d: Deliverer, batches: list[list[Record]]) -> list[int]:
    """Submit the batches; return the order in which they completed."""
    done: list[int] = []
    for i, records in enumerate(batches):
        d.submit(records, lambda i=i: done.append(i))  # type: ignore[misc]
    assert await d.drain(timeout=5.0), f"not settled: {d.pending} records pending ({d.last_error})"
    return done


def records(*values: bytes, topic: str = "verdicts") -> list[Record]:
    return [Record(topic, b"k", v) for v in values]


def too_large(value: bytes) -> Rule:
    return lambda topic, v: KafkaError(KafkaError.MSG_SIZE_TOO_LARGE) if v == value else None


def test_the_producer_sends_at_once_unless_told_to_linger() -> None:
    # Each millisecond of linger is a millisecond on every verdict (docs/BENCHMARKS.md, "linger.ms 0").
    Deliverer({}, producer_factory=FakeProducer)
    Deliverer({}, linger_ms=5, producer_factory=FakeProducer)
    assert [p.config["linger.ms"] for p in FakeProducer.made[-2:]] == [0.0, 5.0]
    assert Settings.model_fields["producer_linger_ms"].default == 0.0
    assert FakeProducer.made[-1].config["acks"] == "all"


def test_a_refused_record_is_tried_then_dead_lettered_and_the_batches_behind_it_complete() -> None:
    metrics = ScorerMetrics()

    async def run() -> tuple[Deliverer, list[int]]:
        d = deliverer(metrics)
        FakeProducer.made[0].refuse = too_large(b"poison")
        return d, await settle(d, [records(b"a", b"poison", b"b"), records(b"c")])

    d, done = asyncio.run(run())
    producer = FakeProducer.made[0]
    assert sorted(done) == [0, 1]
    assert producer.delivered == [("verdicts", b"a"), ("verdicts", b"b"), ("verdicts", b"c"), ("dlq", b"dead:poison")]
    assert metrics.delivery_errors.labels("verdicts", "MSG_SIZE_TOO_LARGE")._value.get() == 3, "three attempts"
    assert d.pending == 0


def test_a_record_refused_at_produce_time_takes_the_same_path() -> None:
    async def run() -> None:
        d = deliverer(ScorerMetrics(), attempts=2)
        FakeProducer.made[0].raise_on_produce = too_large(b"huge")
        await settle(d, [records(b"huge", b"ok")])

    asyncio.run(run())
    assert sorted(FakeProducer.made[0].delivered) == [("dlq", b"dead:huge"), ("verdicts", b"ok")]


def test_a_dead_letter_refused_too_is_given_up_counted_and_does_not_block() -> None:
    metrics = ScorerMetrics()

    async def run() -> list[int]:
        d = deliverer(metrics)
        FakeProducer.made[0].refuse = lambda topic, v: KafkaError(KafkaError.MSG_SIZE_TOO_LARGE) if b"x" in v else None
        return await settle(d, [records(b"x"), records(b"fine")])

    done = asyncio.run(run())
    assert sorted(done) == [0, 1]
    assert FakeProducer.made[0].delivered == [("verdicts", b"fine")]
    assert metrics.undeliverable.labels("dlq")._value.get() == 1


def test_transient_failures_are_retried_until_delivered_never_dead_lettered() -> None:
    failures = {"left": 5}

    def flaky(topic: str, value: bytes) -> KafkaError | None:
        if failures["left"]:
            failures["left"] -= 1
            return KafkaError(KafkaError._MSG_TIMED_OUT)
        return None

    async def run() -> None:
        d = deliverer(ScorerMetrics(), attempts=2)
        FakeProducer.made[0].refuse = flaky
        await settle(d, [records(b"owed")])

    asyncio.run(run())
    assert FakeProducer.made[0].delivered == [("verdicts", b"owed")], "retried past `attempts`, not dead-lettered"


def test_a_record_acknowledged_without_an_offset_is_produced_again_until_written() -> None:
    unwritten = {"left": 2}

    def once_unwritten(topic: str, value: bytes) -> bool:
        if value == b"first" and unwritten["left"]:
            unwritten["left"] -= 1
            return True
        return False

    async def run() -> ScorerMetrics:
        metrics = ScorerMetrics()
        d = deliverer(metrics)
        FakeProducer.made[0].unconfirmed = once_unwritten
        await settle(d, [records(b"first", b"second")])
        return metrics

    metrics = asyncio.run(run())
    assert sorted(FakeProducer.made[0].delivered) == [("verdicts", b"first"), ("verdicts", b"second")]
    assert metrics.delivery_errors.labels("verdicts", "NO_OFFSET")._value.get() == 2


def test_a_fatal_producer_is_replaced_and_its_records_produced_again() -> None:
    async def run() -> Deliverer:
        d = deliverer(ScorerMetrics())
        first = FakeProducer.made[0]
        first.refuse = lambda topic, v: KafkaError(KafkaError._FATAL, "sequence lost", fatal=True)
        await settle(d, [records(b"a", b"b")])
        return d

    asyncio.run(run())
    first, second = FakeProducer.made
    assert first.delivered == [] and first.purged
    assert sorted(second.delivered) == [("verdicts", b"a"), ("verdicts", b"b")]


def test_drain_gives_up_at_its_deadline_while_the_broker_is_away() -> None:
    async def run() -> tuple[bool, int]:
        d = deliverer(ScorerMetrics())
        FakeProducer.made[0].refuse = lambda topic, v: KafkaError(KafkaError._TRANSPORT)
        d.submit(records(b"a"), lambda: None)
        return await d.drain(timeout=0.2), d.pending

    finished, pending = asyncio.run(run())
    assert (finished, pending) == (False, 1)
