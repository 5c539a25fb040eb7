"""Produce each batch's verdicts and dead letters, and call back once the broker has acknowledged all of them.

Batches are pipelined: the agent scores the next batch while the broker acknowledges the previous ones, and a
batch's source events are acked (made committable) only from its completion callback. So nothing is lost
(offsets never pass an unacknowledged verdict) and the agent never sits idle waiting for a round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


@dataclass(slots=True)
class Record:
    """One message to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None


class _Batch:
    __slots__ = ("size", "remaining", "on_done")

    def __init__(self, size: int, on_done: Callable[[], None]) -> None:
        self.size = size
        self.remaining = size
        self.on_done = on_done


class Deliverer:
    """A librdkafka producer (acks=all, idempotent) whose delivery reports are served on the event loop.

    A task polls for delivery reports every millisecond while records are in flight, so callbacks run on the
    loop thread: no locks, and no GIL hand-offs with a reporting thread on every message.

    `submit` queues a batch and returns at once; `on_done` runs on the event loop when every record of the
    batch is acknowledged. A failed record is produced again until it is acknowledged. `wait_below` gives
    back-pressure (a broker that is down stops the agent instead of filling memory); `drain` waits for all.
    """

    def __init__(self, kafka_config: dict[str, Any], linger_ms: float = 1.0, max_in_flight: int = 50_000) -> None:
        self._producer = Producer(
            {
                **kafka_config,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": linger_ms,
                "batch.num.messages": 10_000,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 1_000_000,
                "log_level": 3,
            }
        )
        self.max_in_flight = max_in_flight
        self._in_flight = 0  # records produced and not yet acknowledged
        self._batches = 0
        self._poller: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, records: Sequence[Record], on_done: Callable[[], None]) -> None:
        """Produce the records; call `on_done` on the running loop once all are acknowledged."""
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._serve_reports())
        if not records:
            on_done()
            return
        batch = _Batch(len(records), on_done)
        self._batches += 1
        self._in_flight += len(records)
        for record in records:
            self._produce(record, partial(self._on_delivery, batch, record))

    async def wait_below(self, limit: int | None = None) -> None:
        """Back-pressure: return once fewer than `limit` records wait for acknowledgement."""
        limit = self.max_in_flight if limit is None else limit
        waited = 0.0
        while self._in_flight >= limit:
            await asyncio.sleep(0.002)
            waited += 0.002
            if waited >= 5.0:
                log.warning("%d verdicts not yet acknowledged; waiting for the broker", self._in_flight)
                waited = 0.0

    async def drain(self) -> None:
        """Wait until every submitted batch is acknowledged and its `on_done` has run."""
        await self.wait_below(1)
        while self._batches:
            await asyncio.sleep(0.002)

    async def _serve_reports(self) -> None:
        poll = self._producer.poll
        while True:
            poll(0)
            await asyncio.sleep(0.001 if self._in_flight else 0.01)

    def _produce(self, record: Record, on_delivery: Any) -> None:
        while True:
            try:
                self._producer.produce(
                    record.topic, value=record.value, key=record.key, headers=record.headers, on_delivery=on_delivery
                )
                return
            except BufferError:  # local queue full: let librdkafka drain it
                self._producer.poll(0.05)

    def _on_delivery(self, batch: _Batch, record: Record, error: KafkaError | None, _message: Message) -> None:
        # Runs on the loop thread, inside poll().
        if error is not None:
            log.warning("a record to %s failed (%s); producing it again", record.topic, error.str())
            self._produce(record, partial(self._on_delivery, batch, record))
            return
        batch.remaining -= 1
        if batch.remaining == 0:
            self._in_flight -= batch.size
            self._batches -= 1
            try:
                batch.on_done()
            except Exception:  # a bookkeeping error must not stop the delivery reports of later batches
                log.exception("completing a delivered batch failed")
