"""`momoguard log-sink`: the scored topic and the labels topic, written to the log as Parquet parts by day.

At least once, and nothing acknowledged is ever lost: rows are buffered in memory, and once the buffer holds
`log_roll_bytes` or its oldest row has waited `log_roll_interval_s`, every buffered day of every dataset is written
as a part (durably: store.py), and only then are the offsets of those rows committed. A crash before the commit
loses only what the next run reads again (duplicates, removed by tx_id when the log is read). Memory is bounded
by the roll size plus the consumer's own fetch queue, which is capped to the same size.

A message the sink cannot read (not a scored record, not a label) is never fatal and never silent: it is logged
with its topic, partition and offset, counted, and kept in the `rejected` dataset with its bytes and the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from core.settings import Settings
from feedback.errors import LogWriteError
from feedback.labels import label_table
from feedback.store import LABELS, REJECTED, SCORED, LogStore
from kafka_ops.clients import librdkafka_config
from schemas.label import Label, parse_label
from schemas.scored import read_scored_message

log = logging.getLogger(__name__)

REJECTED_SCHEMA = pa.schema(
    [
        pa.field("topic", pa.string()),
        pa.field("partition", pa.int32()),
        pa.field("offset", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("error", pa.string()),
        pa.field("value", pa.binary()),
        pa.field("received_at", pa.timestamp("us", tz="UTC")),
    ]
)


class ConsumerLike(Protocol):
    """The part of confluent-kafka's Consumer the sink uses."""

    def subscribe(self, topics: list[str], on_assign: Any = ..., on_revoke: Any = ...) -> None: ...
    def consume(self, num_messages: int, timeout: float) -> list[Message]: ...
    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> Any: ...
    def close(self) -> None: ...


@dataclass
class SinkStats:
    """What one run of the sink wrote, for its log lines and its tests."""

    scored_rows: int = 0
    labels: int = 0
    rejected: int = 0
    parts: int = 0
    commits: int = 0
    by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class LogSink:
    """Reads the two topics, buffers by (dataset, day), rolls parts, commits after each durable roll."""

    def __init__(
        self,
        settings: Settings,
        consumer_factory: Callable[[dict[str, Any]], ConsumerLike] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = LogStore(settings.feedback_dir)
        self.clock = clock
        self.stats = SinkStats()
        self._tables: dict[tuple[str, str], list[pa.Table]] = defaultdict(list)
        self._labels: dict[str, list[Label]] = defaultdict(list)
        self._rejected: list[dict[str, Any]] = []
        self._bytes = 0
        self._oldest: float | None = None
        self._positions: dict[tuple[str, int], int] = {}  # next offset to read, per partition, not yet committed
        queue_kb = max(1024, settings.log_roll_bytes // 1024)
        config = {
            **librdkafka_config(settings),
            "group.id": settings.log_sink_group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "queued.max.messages.kbytes": min(queue_kb, 2_097_151),
            "fetch.max.bytes": min(settings.log_roll_bytes, 52_428_800),
            "log_level": 3,
        }
        self.consumer: ConsumerLike = (consumer_factory or Consumer)(config)  # type: ignore[assignment]

    def run(self, stopping: threading.Event) -> SinkStats:
        """Sink until `stopping` is set; then write what is buffered, commit, and close.

        LogWriteError (one line) when a part cannot be written: the offsets of its rows are not committed.
        """
        try:
            return self._run(stopping)
        except OSError as error:
            raise LogWriteError(
                f"cannot write the log in {self.store.root}: {error.strerror or error} ({error.filename or ''}); "
                "nothing since the last part was committed, so the next start reads it again"
            ) from None

    def _run(self, stopping: threading.Event) -> SinkStats:
        self.store.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.store.remove_partials():
            log.warning("removed %s, a part left half-written by a crash (its rows are read again)", leftover)
        self.consumer.subscribe([self.settings.topic_scored, self.settings.topic_labels], on_revoke=self._on_revoke)
        log.info(
            "sinking %s and %s into %s (roll at %d bytes or %.0f s)",
            self.settings.topic_scored,
            self.settings.topic_labels,
            self.store.root,
            self.settings.log_roll_bytes,
            self.settings.log_roll_interval_s,
        )
        try:
            while not stopping.is_set():
                self.poll(0.5)
            self.roll()
        finally:
            self.consumer.close()
        return self.stats

    def poll(self, timeout: float) -> int:
        """Read what is there (up to `timeout`), buffer it, roll when due; returns how many messages were read."""
        messages = self.consumer.consume(1000, timeout)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", error)
                continue
            self._take(message)
        if self._due():
            self.roll()
        return len(messages)

    def roll(self) -> int:
        """Write every buffered day of every dataset as a part, then commit the offsets read; returns the parts."""
        written = 0
        for (dataset, day), tables in sorted(self._tables.items()):
            self.store.write_part(dataset, day, pa.concat_tables(tables))
            written += 1
        for day, labels in sorted(self._labels.items()):
            self.store.write_part(LABELS, day, label_table(labels))
            written += 1
        if self._rejected:
            day = datetime.now(UTC).strftime("%Y-%m-%d")
            self.store.write_part(REJECTED, day, pa.Table.from_pylist(self._rejected, schema=REJECTED_SCHEMA))
            written += 1
        rows = sum(t.num_rows for tables in self._tables.values() for t in tables)
        labelled = sum(len(x) for x in self._labels.values())
        self._tables.clear()
        self._labels.clear()
        self._rejected.clear()
        self._bytes = 0
        self._oldest = None
        self.stats.parts += written
        self._commit()
        if written:
            log.info("wrote %d part(s): %d scored rows, %d labels; offsets committed", written, rows, labelled)
        return written

    def _take(self, message: Message) -> None:
        topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset() or 0
        self._positions[(topic, partition)] = offset + 1
        value = message.value() or b""
        try:
            if topic == self.settings.topic_scored:
                self._take_scored(read_scored_message(value))
            else:
                label = parse_label(value)
                self._labels[label.labelled_at.strftime("%Y-%m-%d")].append(label)
                self._bytes += len(value)
                self.stats.labels += 1
        except ValueError as error:  # pydantic's ValidationError is one
            self._reject(
                topic,
                partition,
                offset,
                value,
                "not_scored_record" if topic == self.settings.topic_scored else "not_label",
                error,
            )
            return
        if self._oldest is None:
            self._oldest = self.clock()

    def _take_scored(self, table: pa.Table) -> None:
        days = pc.strftime(table["scored_at"], format="%Y-%m-%d")
        unique = pc.unique(days).to_pylist()
        for day in unique:
            part = table if len(unique) == 1 else table.filter(pc.equal(days, day))
            self._tables[(SCORED, day)].append(part)
            self._bytes += part.nbytes
        self.stats.scored_rows += table.num_rows

    def _reject(self, topic: str, partition: int, offset: int, value: bytes, reason: str, error: Exception) -> None:
        text = str(error).splitlines()[0][:500] if str(error) else type(error).__name__
        log.warning("rejected %s[%d]@%d: %s (%s)", topic, partition, offset, reason, text)
        self._rejected.append(
            {"topic": topic, "partition": partition, "offset": offset, "reason": reason, "error": text,
             "value": value[:65_536], "received_at": datetime.now(UTC)}
        )  # fmt: skip
        self._bytes += min(len(value), 65_536)
        self.stats.rejected += 1
        self.stats.by_reason[reason] += 1
        if self._oldest is None:
            self._oldest = self.clock()

    def _due(self) -> bool:
        if self._bytes >= self.settings.log_roll_bytes:
            return True
        return self._oldest is not None and self.clock() - self._oldest >= self.settings.log_roll_interval_s

    def _commit(self) -> None:
        if not self._positions:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self._positions.items())]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            # The parts are written: a later commit covers these offsets, or a restart reads them again
            # (duplicates, never a loss).
            log.warning("committing the sink's offsets failed (%s); retrying at the next roll", error.args[0])
            return
        self._positions.clear()
        self.stats.commits += 1

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        # Before another sink takes these partitions: write what was read from them, and commit it.
        self.roll()
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._positions = {k: v for k, v in self._positions.items() if k not in gone}


def run_sink(settings: Settings, stopping: threading.Event) -> SinkStats:
    """The sink of `momoguard log-sink`, until `stopping` is set."""
    return LogSink(settings).run(stopping)
