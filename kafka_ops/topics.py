"""Create MoMo Guard's topics idempotently and describe what the broker holds."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from core.errors import BrokerError
from core.settings import Settings
from kafka_ops.clients import librdkafka_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics the system needs, with their configured partition counts."""
    return [
        TopicSpec(settings.topic_transactions, settings.transactions_partitions),
        TopicSpec(settings.topic_verdicts, settings.verdicts_partitions),
        TopicSpec(settings.topic_dlq, settings.dlq_partitions),
        # The closed loop (docs/FEEDBACK.md): scored transactions for the log sink, labels, the challenger's verdicts.
        TopicSpec(settings.topic_scored, settings.scored_partitions),
        TopicSpec(settings.topic_labels, settings.labels_partitions),
        TopicSpec(settings.topic_shadow, settings.shadow_partitions),
    ]


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient({**librdkafka_config(settings), "log_level": 0})


def list_topics(settings: Settings, timeout: float = 10.0) -> dict[str, int]:
    """Topic name -> partition count, internal topics left out."""
    try:
        metadata = admin_client(settings).list_topics(timeout=timeout)
    except KafkaException as error:
        raise BrokerError(f"Kafka at {settings.kafka_bootstrap} did not answer: {error.args[0]}") from None
    return {name: len(topic.partitions) for name, topic in sorted(metadata.topics.items()) if not name.startswith("__")}


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create missing topics and grow ones with too few partitions; return what happened to each."""
    existing = list_topics(settings, timeout=timeout)
    admin = admin_client(settings)
    outcome: dict[str, str] = {}
    missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, num_partitions=s.partitions, replication_factor=settings.replication_factor)
                for s in missing
            ],
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
                outcome[name] = "created"
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # a concurrent creator won
                    raise BrokerError(f"could not create topic {name}: {error.args[0].str()}") from None
                outcome[name] = "exists"
    for spec in topic_specs(settings):
        have = existing.get(spec.name)
        if have is None:
            continue
        if have < spec.partitions:
            admin.create_partitions([NewPartitions(spec.name, spec.partitions)])[spec.name].result()
            outcome[spec.name] = f"grown {have} -> {spec.partitions} partitions"
        else:
            outcome[spec.name] = "exists"
    return outcome
