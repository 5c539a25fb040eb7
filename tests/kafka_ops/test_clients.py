"""Security defaults: every Kafka client gets the security settings; secrets stay out of output."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest

from core.settings import Settings
from tests.support.cli import run_momoguard

SECRET = "s3cret-Pa55word"


@pytest.fixture
def secured(tmp_path: Path) -> Settings:
    ca = tmp_path / "ca.pem"
    # A real CA certificate file, so ssl.create_default_context can load it.
    ca.write_text(
        Path(ssl.get_default_verify_paths().openssl_cafile or "/etc/ssl/certs/ca-certificates.crt").read_text()
    )
    return Settings(
        kafka_bootstrap="broker.example:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="momo",
        kafka_sasl_password=SECRET,
        kafka_ssl_cafile=ca,  # type: ignore[arg-type]
    )


class Captured:
    """Stands in for a confluent-kafka client class and keeps the configuration it was given."""

    configs: list[dict[str, Any]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        Captured.configs.append(config)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _assert_secured(config: dict[str, Any], settings: Settings) -> None:
    assert config["bootstrap.servers"] == "broker.example:9093"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl.username"], config["sasl.password"]) == ("momo", SECRET)
    assert config["ssl.ca.location"] == str(settings.kafka_ssl_cafile)


def test_every_confluent_client_gets_the_security_settings(secured: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import baseline
    from kafka_ops import topics
    from replay import replayer
    from stream_app import delivery

    Captured.configs = []
    for module, names in (
        (delivery, ["Producer"]),
        (replayer, ["Producer", "Consumer", "AdminClient"]),
        (topics, ["AdminClient"]),
        (baseline, ["Producer", "Consumer"]),
    ):
        for name in names:
            monkeypatch.setattr(module, name, Captured)
    delivery.Deliverer(secured.kafka_config())  # the scorer's producer
    topics.admin_client(secured)  # topic creation and status
    with pytest.raises(Exception):  # noqa: B017 - the stand-in admin answers nothing; only its config matters
        replayer.check_broker(secured)
    assert len(Captured.configs) == 3
    for config in Captured.configs:
        _assert_secured(config, secured)


def test_the_faust_consumer_gets_sasl_and_the_ca(secured: Settings) -> None:
    from stream_app.app import broker_credentials

    credentials = broker_credentials(secured)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "momo" and credentials.password == SECRET
    assert str(credentials.mechanism.value) == "SCRAM-SHA-512"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_plaintext_needs_no_credentials() -> None:
    from stream_app.app import broker_credentials

    assert broker_credentials(Settings()) is None


def test_secrets_are_masked_in_config_output_and_help() -> None:
    env = {
        "MOMOGUARD_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "MOMOGUARD_KAFKA_SASL_MECHANISM": "PLAIN",
        "MOMOGUARD_KAFKA_SASL_USERNAME": "momo",
        "MOMOGUARD_KAFKA_SASL_PASSWORD": SECRET,
    }
    outputs = {}
    for args in (["config"], ["serve", "--help"], ["replay", "--help"], ["--help"]):
        done = run_momoguard(*args, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        outputs[args[0]] = done.stdout
    assert "**********" in outputs["config"]
