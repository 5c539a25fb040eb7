"""Produce a batch's verdicts and dead letters and wait until the broker has acknowledged every one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
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


@dataclass
class _Outcome:
    failed: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Deliverer:
    """A librdkafka producer (acks=all, idempotent) driven from the event loop.

    `deliver` returns only when the broker has acknowledged every record, retrying failures for as long
    as it takes: a batch's offsets are committed after `deliver` returns, so nothing is lost, and a
    crash before that only replays the batch (at least once; duplicates share their `tx_id`).
    """

    def __init__(self, kafka_config: dict[str, Any], linger_ms: float = 1.0) -> None:
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

    async def deliver(self, records: Sequence[Record], flush_timeout_s: float = 5.0) -> None:
        pending = list(records)
        loop = asyncio.get_running_loop()
        attempt = 0
        while pending:
            outcome = _Outcome()
            for record in pending:
                self._produce(record, partial(_on_delivery, outcome, record))
            # flush() waits in librdkafka (GIL released) on a worker thread, so the event loop keeps
            # fetching the next batch meanwhile.
            while await loop.run_in_executor(None, self._producer.flush, flush_timeout_s):
                log.warning(
                    "verdicts not yet acknowledged after %.0f s; still waiting for the broker",
                    flush_timeout_s,
                )
            pending = outcome.failed
            if pending:
                attempt += 1
                log.warning("%d records failed (%s); producing them again", len(pending), outcome.errors[0])
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt))

    def _produce(self, record: Record, on_delivery: Any) -> None:
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:  # local queue full: let librdkafka drain it
                self._producer.poll(0.05)

    def close(self, timeout_s: float = 10.0) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            log.error("%d records still unacknowledged at close", remaining)


def _on_delivery(outcome: _Outcome, record: Record, error: KafkaError | None, _message: Message) -> None:
    if error is not None:
        outcome.failed.append(record)
        outcome.errors.append(error.str())
