"""The lists topic (`momoguard.lists`, compacted): every worker reads it whole and follows it; the CLI writes it.

The bulk consumer (stream_app/bulk.py) carries `transactions` only, and a Faust GlobalTable would put the lists
behind Faust's changelog recovery and standby machinery; what is needed is simpler: each worker, on a thread of
its own, assigns itself every partition of the topic from the beginning (no consumer group, nothing committed),
applies each record to its `ListTable` as it arrives (within a fetch wait of 100 ms of the write), and counts as
loaded once it has reached the end of every partition it found at start. A restart reads the topic again from
the beginning, so entries survive any restart; compaction keeps that read short.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from core.errors import BrokerError, MomoGuardError
from core.settings import Settings
from kafka_ops.clients import librdkafka_config
from schemas.lists import ListEntry
from stream_app.lists import ListTable, Malformed, parse_list_record
from stream_app.metrics import ScorerMetrics

log = logging.getLogger(__name__)

# How long a poll waits for records: the reader notices a stop request within this.
_POLL_S = 0.2


class ListsUnavailableError(MomoGuardError):
    """The lists topic could not be read to its end in time."""


class ListReader:
    """Reads the lists topic into `table` from its beginning, then follows it, until `stop`."""

    def __init__(
        self, settings: Settings, table: ListTable, metrics: ScorerMetrics | None = None, announce: bool = True
    ) -> None:
        self.settings = settings
        self.announce = announce  # log the entries read at start (a worker does; `momoguard lists` does not)
        self.topic = settings.topic_lists
        self.table = table
        self.metrics = metrics
        self.last_error: str | None = None
        self.applied = 0
        self.malformed = 0
        self._loaded = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lists-reader", daemon=True)

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    def start(self) -> ListReader:
        self._thread.start()
        return self

    def wait_loaded(self, timeout: float) -> None:
        """Until every entry written before the start has been read; ListsUnavailableError after `timeout`."""
        if not self._loaded.wait(timeout):
            raise ListsUnavailableError(
                f"could not read the lists topic {self.topic!r} to its end within {timeout:.0f} s "
                f"({self.last_error or 'no error reported'}): is it there? `momoguard topics create` makes it"
            )

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        consumer = Consumer(
            {
                **librdkafka_config(self.settings),
                "group.id": f"momoguard-lists-{uuid.uuid4().hex[:12]}",  # never joined, never committed
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 100,
                "log_level": 3,
            }
        )
        try:
            pending = self._assign(consumer)
            while not self._stopping.is_set():
                # poll() returns as soon as a record is there (consume(n, timeout) would wait for n records or
                # the whole timeout); what else has arrived by then is taken at once.
                first = consumer.poll(_POLL_S)
                arrived = [] if first is None else [first, *consumer.consume(500, timeout=0)]
                for message in arrived:
                    error = message.error()
                    if error is None:
                        self._apply(message)
                    elif error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition() or 0)
                    else:
                        self._failed(f"reading {self.topic}: {error.str()}")
                if not pending and not self._loaded.is_set():
                    log.log(
                        logging.INFO if self.announce else logging.DEBUG,
                        "lists: %d entries read from %s",
                        len(self.table),
                        self.topic,
                    )
                    self._loaded.set()
        except Exception as error:  # never take the worker down: it scores on with the entries it has
            self._failed(f"the lists reader stopped: {type(error).__name__}: {error}")
            log.exception("lists reader of %s stopped; entries read so far stay in force", self.topic)
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> set[int]:
        """Assign every partition from the beginning; the partitions to read to their end before `loaded`."""
        while not self._stopping.is_set():
            try:
                found = consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
            except KafkaException as error:
                self._failed(f"the broker did not answer: {error.args[0].str()}")
                continue
            if found is None or found.error is not None or not found.partitions:
                self._failed(f"topic {self.topic!r} does not exist")
                self._stopping.wait(1.0)
                continue
            partitions = sorted(found.partitions)
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
            return set(partitions)
        return set()

    def _apply(self, message: Message) -> None:
        parsed = parse_list_record(message.key(), message.value())
        if isinstance(parsed, Malformed):
            self.malformed += 1
            self._count("malformed")
            log.warning(
                "lists: ignored a malformed record at %s[%d]@%d: %s (%s)",
                message.topic(),
                message.partition(),
                message.offset(),
                parsed.reason,
                parsed.error,
            )
            return
        if parsed is None:
            account = (message.key() or b"").decode()
            removed = self.table.remove(account)
            self._count("removed")
            if removed is not None and self.announce:
                log.info("lists: %s removed (was %s)", account, removed.entry.action)
        else:
            self.table.put(parsed)
            self._count("applied")
        self.applied += 1
        if self.metrics is not None:
            self.metrics.lists_updated.set(time.time())

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.list_records.labels(outcome).inc()

    def _failed(self, error: str) -> None:
        if error != self.last_error:
            log.warning("lists: %s", error)
        self.last_error = error


def read_entries(settings: Settings, timeout: float = 15.0) -> ListTable:
    """Every entry of the lists topic, read once to its end (for `momoguard lists`)."""
    reader = ListReader(settings, ListTable(), announce=False).start()
    try:
        reader.wait_loaded(timeout)
    finally:
        reader.stop()
    return reader.table


def _producer(settings: Settings, timeout: float) -> Producer:
    # One record, acks=all, no idempotence: a retried duplicate of an entry is the same entry (and saves the
    # producer-id round trip). The topic is checked on the producer's own connection.
    producer = Producer(
        {
            **librdkafka_config(settings),
            "acks": "all",
            "linger.ms": 0,
            "allow.auto.create.topics": False,
            "log_level": 0,
        }
    )
    try:
        found = producer.list_topics(settings.topic_lists, timeout=timeout).topics.get(settings.topic_lists)
    except KafkaException as error:
        raise BrokerError(f"Kafka at {settings.kafka_bootstrap} did not answer: {error.args[0]}") from None
    if found is None or found.error is not None:
        raise BrokerError(f"topic {settings.topic_lists!r} does not exist: run `momoguard topics create`")
    return producer


def _write(settings: Settings, key: str, value: bytes | None, timeout: float = 15.0) -> None:
    producer = _producer(settings, timeout)
    failure: list[str] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failure.append(error.str())

    producer.produce(settings.topic_lists, key=key.encode(), value=value, on_delivery=delivered)
    if producer.flush(timeout) or failure:
        why = failure[0] if failure else f"not acknowledged within {timeout:.0f} s"
        raise BrokerError(f"could not write to {settings.topic_lists!r}: {why}")


def write_entry(settings: Settings, entry: ListEntry) -> None:
    """Put an entry on the lists topic (it replaces the account's entry, if any); acknowledged by all replicas."""
    _write(settings, entry.account, entry.model_dump_json().encode())


def write_removal(settings: Settings, account: str) -> None:
    """A tombstone for the account: every worker drops its entry, and compaction drops the record."""
    _write(settings, account, None)


def entry_json(entry: ListEntry, now: datetime | None = None) -> dict[str, object]:
    """An entry as `lists show --json` prints it, with whether it is in force now."""
    at = now or datetime.now(UTC)
    return {**json.loads(entry.model_dump_json()), "in_force": entry.in_force(at)}
