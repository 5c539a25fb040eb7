"""Where the scorer's consumer group stands on a topic, and the manual skip past a message, if all else fails."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from core.errors import BrokerError, ConfigError, MomoGuardError
from core.settings import Settings
from kafka_ops.topics import admin_client, list_topics

TIMEOUT_S = 15.0
# A broker just started, or a group coordinator moving, answers these for a few seconds: ask again.
_TRANSIENT = (KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR)
K = TypeVar("K")


class SkipRefusedError(MomoGuardError):
    """`momoguard offsets skip` will not move the group: workers are running, or the offset makes no sense."""


@dataclass(frozen=True)
class PartitionPosition:
    """One partition of a topic as the broker and the consumer group see it."""

    partition: int
    start: int  # the oldest offset the broker still holds (low watermark)
    end: int  # the offset the next message will get (high watermark)
    committed: int | None  # the group's next offset to read; None before its first commit

    @property
    def next_read(self) -> int:
        """Where the group reads next: its committed offset, or the oldest one held (auto.offset.reset=earliest)."""
        return self.start if self.committed is None else max(self.committed, self.start)

    @property
    def lag(self) -> int:
        return max(0, self.end - self.next_read)


@dataclass(frozen=True)
class Skipped:
    """What `skip` did: the group's committed offset moved from `was` to `now` on one partition."""

    topic: str
    partition: int
    was: int | None
    now: int
    first_skipped: int  # the first offset that will get no outcome (`now - 1` is the last)


def positions(settings: Settings, topic: str) -> list[PartitionPosition]:
    """Oldest, end and committed offset of the scorer's group on every partition of `topic`."""
    count = list_topics(settings, timeout=TIMEOUT_S).get(topic)
    if count is None:
        raise ConfigError(f"no topic {topic!r} on {settings.kafka_bootstrap}")
    # The client is held (by the lambdas) until the answers are in: a collected client never completes its futures.
    admin = admin_client(settings)
    partitions = [TopicPartition(topic, p) for p in range(count)]
    earliest = dict.fromkeys(partitions, OffsetSpec.earliest())
    latest = dict.fromkeys(partitions, OffsetSpec.latest())
    start = _ask(lambda: admin.list_offsets(earliest, request_timeout=TIMEOUT_S), "list offsets")
    end = _ask(lambda: admin.list_offsets(latest, request_timeout=TIMEOUT_S), "list offsets")
    request = [ConsumerGroupTopicPartitions(settings.consumer_group, partitions)]
    answer = _ask_one(lambda: admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT_S), "read offsets")
    committed = {tp.partition: tp.offset for tp in answer.topic_partitions}
    start_of = {tp.partition: int(o.offset) for tp, o in start.items()}
    end_of = {tp.partition: int(o.offset) for tp, o in end.items()}
    return [
        PartitionPosition(p, start_of[p], end_of[p], committed[p] if committed.get(p, -1) >= 0 else None)
        for p in range(count)
    ]


def active_members(settings: Settings) -> int:
    """How many consumers are in the scorer's group right now."""
    group = settings.consumer_group
    admin = admin_client(settings)
    found = _ask_one(lambda: admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S), "describe the group")
    return len(found.members)


def skip(settings: Settings, topic: str, partition: int, offset: int) -> Skipped:
    """Commit `offset + 1` for the scorer's group on one partition, so the message at `offset` is never read again.

    Refused while the group has members (a running worker would overwrite the commit, and the broker rejects
    it anyway), for an offset the partition does not hold, and for one the group has already read past.
    """
    group = settings.consumer_group
    members = active_members(settings)
    if members:
        raise SkipRefusedError(
            f"consumer group {group!r} has {members} active member(s): stop the scorer workers first"
        )
    by_partition = {p.partition: p for p in positions(settings, topic)}
    if partition not in by_partition:
        raise ConfigError(f"topic {topic!r} has no partition {partition} (it has {len(by_partition)})")
    here = by_partition[partition]
    if not here.start <= offset < here.end:
        held = f"holds offsets {here.start}..{here.end - 1}" if here.end > here.start else "holds no messages"
        raise SkipRefusedError(f"offset {offset} is outside {topic}:{partition}, which {held}")
    if offset < here.next_read:
        raise SkipRefusedError(
            f"group {group!r} already reads {topic}:{partition} from offset {here.next_read}: "
            f"offset {offset} is behind it, nothing to skip"
        )
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, partition, offset + 1)])
    admin = admin_client(settings)
    answer = _ask_one(lambda: admin.alter_consumer_group_offsets([request], request_timeout=TIMEOUT_S), "commit")
    for tp in answer.topic_partitions:
        if tp.error is not None:  # e.g. a worker joined the group since the check
            raise BrokerError(f"the broker refused the commit on {topic}:{partition}: {tp.error.str()}")
    return Skipped(topic, partition, here.committed, offset + 1, here.next_read)


def _ask(request: Callable[[], Mapping[K, Any]], what: str) -> dict[K, Any]:
    """The answers to one admin request (a dict of futures), asked again while the broker says it is busy."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            return {key: future.result(timeout=TIMEOUT_S + 5) for key, future in request().items()}
        except KafkaException as error:
            problem = error.args[0]
            if problem.code() in _TRANSIENT and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise BrokerError(f"could not {what}: {problem.str()}") from None
        except TimeoutError:
            raise BrokerError(f"could not {what}: no answer within {TIMEOUT_S + 5:.0f} s") from None


def _ask_one(request: Callable[[], Mapping[K, Any]], what: str) -> Any:
    (answer,) = _ask(request, what).values()
    return answer
