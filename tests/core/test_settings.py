"""The one settings object: env prefix, defaults, security passed to clients, secrets never shown."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from core.settings import Settings
from kafka_ops.clients import librdkafka_config


@pytest.fixture(autouse=True)
def _no_momoguard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # `make test` exports MOMOGUARD_KAFKA_BOOTSTRAP; these tests start from the defaults.
    for name in [n for n in os.environ if n.startswith("MOMOGUARD_")]:
        monkeypatch.delenv(name)


def test_defaults() -> None:
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert (s.topic_transactions, s.topic_verdicts, s.topic_dlq) == (
        "transactions",
        "verdicts",
        "transactions.dlq",
    )
    assert s.transactions_partitions == 8 and s.verdicts_partitions == 8
    assert s.tracking_uri.startswith("sqlite:///") and s.tracking_uri.endswith(".run/mlflow.db")


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMOGUARD_KAFKA_BOOTSTRAP", "10.0.0.5:9093")
    monkeypatch.setenv("MOMOGUARD_TRANSACTIONS_PARTITIONS", "12")
    s = Settings()
    assert s.kafka_bootstrap == "10.0.0.5:9093" and s.transactions_partitions == 12


def test_sasl_ssl_settings_reach_the_client_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMOGUARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("MOMOGUARD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("MOMOGUARD_KAFKA_SASL_USERNAME", "momo")
    monkeypatch.setenv("MOMOGUARD_KAFKA_SASL_PASSWORD", "s3cret-pass")
    monkeypatch.setenv("MOMOGUARD_KAFKA_SSL_CAFILE", "/etc/ssl/ca.pem")
    s = Settings()
    assert librdkafka_config(s) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "momo",
        "sasl.password": "s3cret-pass",
        "ssl.ca.location": "/etc/ssl/ca.pem",
    }
    assert "s3cret-pass" not in repr(s) and "s3cret-pass" not in str(s.public_dump())


def test_incomplete_sasl_is_rejected() -> None:
    with pytest.raises(ValidationError, match="SASL needs"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT")


@pytest.mark.parametrize("bootstrap", ["localhost", "host:port", ":9092", ""])
def test_bad_bootstrap_is_rejected(bootstrap: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        Settings(kafka_bootstrap=bootstrap)


def test_readme_settings_table_is_up_to_date() -> None:
    from core.settings import PROJECT_ROOT
    from core.settings_table import with_table

    readme = (PROJECT_ROOT / "README.md").read_text()
    assert with_table(readme) == readme, "README settings table is stale: run `make docs`"
