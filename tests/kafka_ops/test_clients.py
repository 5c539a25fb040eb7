"""Security defaults: every Kafka client gets the security settings; secrets stay out of output."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path
from typing import Any

import faust
import pytest

from core.settings import PROJECT_ROOT, Settings
from kafka_ops.clients import client_config, librdkafka_config
from tests.support.cli import run_momoguard
from tests.support.layout import ROOMS

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


def test_one_config_gives_both_forms(secured: Settings) -> None:
    config = client_config(secured)
    _assert_secured(config.librdkafka(), secured)
    credentials = config.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "momo" and credentials.password == SECRET
    assert str(credentials.mechanism.value) == "SCRAM-SHA-512"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_plaintext_needs_no_credentials() -> None:
    config = client_config(Settings(kafka_bootstrap="a:1, b:2"))
    assert config.faust_credentials() is None
    assert config.librdkafka() == {"bootstrap.servers": "a:1,b:2", "security.protocol": "PLAINTEXT"}


def test_the_clients_built_here_get_the_security_settings(secured: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka_ops import topics
    from replay import replayer
    from stream_app import delivery

    Captured.configs = []
    monkeypatch.setattr(topics, "AdminClient", Captured)
    monkeypatch.setattr(replayer, "AdminClient", Captured)
    monkeypatch.setattr(replayer, "Consumer", Captured)
    delivery.Deliverer(librdkafka_config(secured), producer_factory=Captured)  # the scorer's producer
    topics.admin_client(secured)  # topic creation, status, offsets
    with pytest.raises(Exception):  # noqa: B017 - the stand-in admin answers nothing; only its config matters
        replayer.check_broker(secured)
    with pytest.raises(Exception):  # noqa: B017 - as above: the stand-in has no verdicts topic to read
        replayer.VerdictReader(secured, "run")  # the load test's verdict reader
    assert len(Captured.configs) == 4, "each stand-in above was built once"
    for config in Captured.configs:
        _assert_secured(config, secured)


# Where the code builds a confluent-kafka client without `**librdkafka_config(settings)` in its config, and why.
_BUILT_OTHERWISE = {
    ("kafka_ops/local_broker.py", "AdminClient"): "the local broker's readiness probe: loopback, no security",
    ("stream_app/delivery.py", "_factory"): "the deliverer's producer: from the config it is given (tested above)",
}


def test_every_confluent_client_in_the_code_is_built_from_the_one_config() -> None:
    built = []
    for room in ROOMS:
        for path in sorted((PROJECT_ROOT / room).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name not in ("Producer", "Consumer", "AdminClient", "_factory"):
                    continue
                where = (str(path.relative_to(PROJECT_ROOT)), name)
                built.append(where)
                if where in _BUILT_OTHERWISE:
                    continue
                config = node.args[0] if node.args else None
                spread = (
                    [v for k, v in zip(config.keys, config.values, strict=True) if k is None]
                    if isinstance(config, ast.Dict)
                    else []
                )
                assert any(
                    isinstance(v, ast.Call) and getattr(v.func, "id", "") == "librdkafka_config" for v in spread
                ), f"{where[0]}:{node.lineno}: {name} is not built from librdkafka_config(settings)"
    assert len(built) >= 8, "the check sees the clients"


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
