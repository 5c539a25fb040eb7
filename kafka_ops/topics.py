"""Create MoMo Guard's topics idempotently and describe what the broker holds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

from core.errors import BrokerError
from core.settings import Settings
from kafka_ops.clients import librdkafka_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)  # topic configs set at creation, checked after


# The lists topic keeps the latest record of each account for ever (a tombstone removes it): compacted, never
# deleted by age, so every worker that starts reads every entry in force. One partition: a few thousand
# entries at most, read whole by every worker.
LISTS_CONFIG = {"cleanup.policy": "compact"}
# The account table and its changelog: the latest record of each account, kept (compacted) for a restore.
ACCOUNT_TABLE = "accounts"
CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics the system needs, with their configured partition counts (the account tables' when kept)."""
    specs = [
        TopicSpec(settings.topic_transactions, settings.transactions_partitions),
        TopicSpec(settings.topic_verdicts, settings.verdicts_partitions),
        TopicSpec(settings.topic_dlq, settings.dlq_partitions),
        TopicSpec(settings.topic_lists, 1, LISTS_CONFIG),
        # The closed loop (docs/FEEDBACK.md): scored transactions for the log sink, labels, the challenger's verdicts.
        TopicSpec(settings.topic_scored, settings.scored_partitions),
        TopicSpec(settings.topic_labels, settings.labels_partitions),
        TopicSpec(settings.topic_shadow, settings.shadow_partitions),
    ]
    if settings.keeps_account_tables:
        # The account tables (docs/ACCOUNT_STATE.md): co-partitioned with the transactions, so as many partitions.
        specs += [
            TopicSpec(settings.topic_credits, settings.transactions_partitions),
            TopicSpec(account_changelog(settings), settings.transactions_partitions, CHANGELOG_CONFIG),
        ]
    return specs


def account_changelog(settings: Settings) -> str:
    """The account table's changelog topic: Faust's naming, `<app id>-<table>-changelog`."""
    return f"{settings.consumer_group}-{ACCOUNT_TABLE}-changelog"


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
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=settings.replication_factor,
                    config=dict(s.config),
                )
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
        wrong = config_differences(admin, spec, timeout)
        if wrong:
            # Changing an operator's topic behind their back is not this command's job: say what differs.
            outcome[spec.name] += f" (but {wrong}: set it with kafka-configs.sh --alter)"
            log.warning("topic %s: %s", spec.name, wrong)
    return outcome


def config_differences(admin: AdminClient, spec: TopicSpec, timeout: float = 30.0) -> str:
    """What of `spec.config` an existing topic does not have, as `key=value, expected value` ('' when none)."""
    if not spec.config:
        return ""
    resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
    try:
        described = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    except KafkaException as error:
        raise BrokerError(f"could not read the config of topic {spec.name}: {error.args[0].str()}") from None
    have = {key: entry.value for key, entry in described.items()}
    wrong = [f"{key}={have.get(key)}, expected {value}" for key, value in spec.config.items() if have.get(key) != value]
    return "; ".join(wrong)
