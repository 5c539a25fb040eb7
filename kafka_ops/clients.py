"""The connection and security settings every Kafka client is built from: read once, given in two forms.

confluent-kafka (the scorer's producer, the baseline, the replayer, the admin client) takes librdkafka's
dotted keys; Faust (aiokafka underneath) takes a credentials object. Both come from `KafkaClientConfig`, so a
security setting reaches every client or none.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from core.settings import Settings


@dataclass(frozen=True)
class KafkaClientConfig:
    """Where the brokers are and how to reach them securely."""

    servers: tuple[str, ...]
    protocol: str
    sasl_mechanism: str | None
    sasl_username: str | None
    sasl_password: str | None
    ssl_cafile: Path | None

    def librdkafka(self) -> dict[str, Any]:
        """The config of a confluent-kafka client (Producer, Consumer, AdminClient)."""
        config: dict[str, Any] = {"bootstrap.servers": ",".join(self.servers), "security.protocol": self.protocol}
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password
        if self.ssl_cafile:
            config["ssl.ca.location"] = str(self.ssl_cafile)
        return config

    def faust_credentials(self) -> Any:
        """Faust's `broker_credentials`: SASL credentials, an SSL context, or None for PLAINTEXT."""
        context = None
        if self.protocol.endswith("SSL"):
            context = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        if self.protocol.startswith("SASL_"):
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=context,
            )
        return context


def client_config(settings: Settings) -> KafkaClientConfig:
    """The Kafka client config of the settings in force (the settings' validator made SASL complete)."""
    password = settings.kafka_sasl_password
    return KafkaClientConfig(
        servers=tuple(server.strip() for server in settings.kafka_bootstrap.split(",")),
        protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=password.get_secret_value() if password is not None else None,
        ssl_cafile=settings.kafka_ssl_cafile,
    )


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """Shorthand: the confluent-kafka config of the settings in force."""
    return client_config(settings).librdkafka()
