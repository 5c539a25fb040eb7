"""Produce each batch's verdicts and dead letters, and call back once every record of the batch has an outcome.

Batches are pipelined: the agent scores the next batch while the broker acknowledges the previous ones, and a
batch's source events are acked (made committable) only from its completion callback. So nothing is lost
(offsets never pass an unacknowledged verdict) and the agent never sits idle waiting for a round trip.

A record's outcome is one of: acknowledged by the broker; refused for good (too large, invalid) and replaced by
the dead letter `rescue` gives for it, after `attempts` tries; or, when even that is refused, given up on,
logged and counted (`momoguard_undeliverable_records_total`). One bad record never holds up the batches behind
it. Failures that are not the record's fault (the broker away, a missing topic, timeouts) are retried without
limit (backing off to 30 s): the verdict is owed, and back-pressure stops the intake meanwhile. A producer that
hits a fatal error (the idempotent producer's sequence lost) is replaced and its unacknowledged records produced
again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import Record

log = logging.getLogger(__name__)

# Errors that are the record's own fault: producing it again cannot help.
PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.POLICY_VIOLATION,
        KafkaError._INVALID_ARG,
        KafkaError._BAD_MSG,
    }
)
# The most a produced record may weigh (librdkafka's `message.max.bytes`). Verdicts and dead letters stay well
# below it by construction (settings cap what is read and how large a dead letter may be).
MAX_RECORD_BYTES = 1_000_000


class ProducerLike(Protocol):
    """The part of confluent-kafka's Producer the deliverer uses (a fake in unit tests)."""

    def produce(
        self, topic: str, value: bytes, key: bytes | None, headers: Any, on_delivery: Any, partition: int = -1
    ) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None: ...
    def flush(self, timeout: float) -> int: ...


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

    `submit` queues a batch and returns at once; `on_done` runs on the event loop once every record of the batch
    has its outcome. `wait_below` gives back-pressure (a broker that is down stops the agent instead of filling
    memory); `drain` waits for all, up to a deadline.
    """

    def __init__(
        self,
        kafka_config: dict[str, Any],
        metrics: ScorerMetrics | None = None,
        rescue: Callable[[Record, str], Record | None] | None = None,
        attempts: int = 3,
        retry_delay_s: float = 0.5,
        linger_ms: float = 0.0,
        max_in_flight: int = 50_000,
        producer_factory: Callable[[dict[str, Any]], ProducerLike] | None = None,
    ) -> None:
        self._config = {
            **kafka_config,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "batch.num.messages": 10_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
            "message.max.bytes": MAX_RECORD_BYTES,
            "log_level": 3,
            "error_cb": self._on_client_error,
        }
        self._factory: Callable[[dict[str, Any]], ProducerLike] = producer_factory or Producer  # type: ignore[assignment]
        self._producer = self._factory(self._config)
        self.metrics = metrics
        self.rescue = rescue
        self.attempts = attempts
        self.retry_delay_s = retry_delay_s
        self.max_in_flight = max_in_flight
        self._in_flight = 0  # records produced and not yet settled
        self._batches = 0
        self._fatal: str | None = None  # a fatal error reported by the producer, until it is replaced
        self._poller: asyncio.Task[None] | None = None
        self._submitted = asyncio.Event()  # wakes an idle poller at once: a report is owed
        self.last_progress = time.monotonic()  # when a record last got its outcome (or nothing was owed)
        self.last_error: str | None = None  # the latest delivery error, for the logs and /health

    @property
    def pending(self) -> int:
        """Records produced and not yet acknowledged (or settled otherwise)."""
        return self._in_flight

    def submit(self, records: Sequence[Record], on_done: Callable[[], None]) -> None:
        """Produce the records; call `on_done` on the running loop once each has its outcome."""
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._serve_reports())
        if not records:
            on_done()
            return
        if not self._in_flight:
            self.last_progress = time.monotonic()  # nothing was owed until now: the wait starts here
            self._submitted.set()
        batch = _Batch(len(records), on_done)
        self._batches += 1
        self._in_flight += len(records)
        for record in records:
            self._produce(record, batch)

    async def wait_below(self, limit: int | None = None) -> None:
        """Back-pressure: return once fewer than `limit` records wait for their outcome."""
        limit = self.max_in_flight if limit is None else limit
        waited = 0.0
        while self._in_flight >= limit:
            await asyncio.sleep(0.002)
            waited += 0.002
            if waited >= 5.0:
                log.warning(
                    "%d records unacknowledged for %.0f s; last delivery error: %s",
                    self._in_flight,
                    time.monotonic() - self.last_progress,
                    self.last_error or "none (the broker is slow)",
                )
                waited = 0.0

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted batch is settled and its `on_done` has run; False if `timeout` passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._in_flight or self._batches:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.002)
        return True

    async def _serve_reports(self) -> None:
        while True:
            if self._fatal is not None:
                self._replace_producer()
            self._producer.poll(0)
            if self._in_flight:
                await asyncio.sleep(0.001)
                continue
            # Idle: wait for the next submit (or 10 ms, for client errors). Sleeping the whole 10 ms regardless
            # made a batch submitted meanwhile wait for its reports: ~5 ms of median latency at 1,000 tx/s.
            self._submitted.clear()
            try:
                await asyncio.wait_for(self._submitted.wait(), 0.01)
            except TimeoutError:
                pass

    def _produce(self, record: Record, batch: _Batch) -> None:
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                    on_delivery=partial(self._on_delivery, batch, record),
                    partition=record.partition,
                )
                return
            except BufferError:  # local queue full: let librdkafka drain it
                self._producer.poll(0.05)
            except KafkaException as error:  # refused before it left: too large, or the producer is fatal
                self._failed(batch, record, error.args[0])
                return

    def _on_delivery(self, batch: _Batch, record: Record, error: KafkaError | None, message: Message) -> None:
        # Runs on the loop thread, inside poll().
        if error is not None:
            self._failed(batch, record, error)
            return
        offset = message.offset()
        if offset is None or offset < 0:
            # A success with no offset: librdkafka took the broker's "duplicate sequence" answer as proof that the
            # record was written before. After its topic was deleted and recreated it was not (seen in 3 of 14
            # runs: the first verdict on a recreated partition acknowledged, offset None, absent from the topic;
            # librdkafka does not reset a partition's sequence on recreation). Produced again: a duplicate
            # verdict at worst, which readers drop by tx_id, never a lost one.
            self.last_error = f"{record.topic}: acknowledged without an offset"
            if self.metrics is not None:
                self.metrics.delivery_errors.labels(record.topic, "NO_OFFSET").inc()
            log.warning("a record to %s was acknowledged without an offset; producing it again", record.topic)
            self._produce(record, batch)
            return
        self._settled(batch)

    def _failed(self, batch: _Batch, record: Record, error: KafkaError) -> None:
        self.last_error = f"{record.topic}: {error.str()}"
        if self.metrics is not None:
            self.metrics.delivery_errors.labels(record.topic, error.name()).inc()
        if error.code() not in PERMANENT:
            if error.fatal():
                self._fatal = error.str()
            # Backing off per record keeps errors the broker returns at once (authorization) from spinning.
            delay = min(30.0, self.retry_delay_s * 2 ** min(record.retries, 6))
            record.retries += 1
            log.debug("a record to %s failed (%s); producing it again in %.1f s", record.topic, error.str(), delay)
            asyncio.get_running_loop().call_later(delay, self._produce, record, batch)
            return
        record.attempts += 1
        if record.attempts < self.attempts:
            self._produce(record, batch)
            return
        replacement = self.rescue(record, error.str()) if self.rescue is not None else None
        if replacement is not None:
            log.error(
                "a record to %s was refused %d times (%s); its dead letter goes to %s instead",
                record.topic,
                record.attempts,
                error.str(),
                replacement.topic,
            )
            self._produce(replacement, batch)
            return
        log.error(
            "a record to %s (key %r) was refused %d times (%s) and has no dead letter to fall back on: given up",
            record.topic,
            (record.key or b"")[:64],
            record.attempts,
            error.str(),
        )
        if self.metrics is not None:
            self.metrics.undeliverable.labels(record.topic).inc()
        self._settled(batch)

    def _settled(self, batch: _Batch) -> None:
        self.last_progress = time.monotonic()
        batch.remaining -= 1
        if batch.remaining:
            return
        self._in_flight -= batch.size
        self._batches -= 1
        try:
            batch.on_done()
        except Exception:  # a bookkeeping error must not stop the delivery reports of later batches
            log.exception("completing a delivered batch failed")

    def _on_client_error(self, error: KafkaError) -> None:
        # Runs inside poll(). Transport errors come and go (the broker restarting); only fatal ones need action.
        self.last_error = error.str()
        if error.fatal():
            self._fatal = error.str()

    def _replace_producer(self) -> None:
        log.error(
            "the producer hit a fatal error (%s); replacing it and producing its %d unacknowledged records again",
            self._fatal,
            self._in_flight,
        )
        self._fatal = None
        old, self._producer = self._producer, self._factory(self._config)
        old.purge(in_queue=True, in_flight=True, blocking=False)
        old.poll(0)  # serves the purged records' reports: each is produced again on the new producer
        old.flush(0)
