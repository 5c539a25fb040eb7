"""The real Kafka broker: per-key order survives a round trip; up/down are idempotent and leave nothing."""

from __future__ import annotations

import socket
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from core.errors import BrokerError
from core.settings import DEFAULT_RUN_DIR, Settings
from kafka_ops import local_broker, topics
from tests.conftest import spare_broker_port
from tests.support.cli import run_momoguard

pytestmark = pytest.mark.kafka


def test_thousand_keyed_transactions_round_trip_in_order_per_key(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("transactions", partitions=8)
    # Idempotent, as every producer of the project's: without it a retried batch (a busy broker) can land behind a
    # later one, and a key's order is lost (CI saw it once: C4's first messages after its 818th).
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "acks": "all", "linger.ms": 5, "enable.idempotence": True}
    )
    sent: dict[str, list[int]] = defaultdict(list)
    for seq in range(1000):
        account = f"C{seq % 37}"
        sent[account].append(seq)
        tx = {"tx_id": str(seq), "step": 1, "type": "TRANSFER", "amount": float(seq), "nameOrig": account}
        producer.produce(topic, key=account.encode(), value=orjson.dumps(tx))
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    received: dict[str, list[int]] = defaultdict(list)
    partitions_of: dict[str, set[int]] = defaultdict(set)
    count = 0
    try:
        for _ in range(300):
            for message in consumer.consume(500, timeout=0.5):
                assert message.error() is None, message.error()
                key = message.key().decode()
                received[key].append(int(orjson.loads(message.value())["tx_id"]))
                partitions_of[key].add(message.partition())
                count += 1
            if count >= 1000:
                break
    finally:
        consumer.close()
    assert count == 1000
    assert received == sent, "each key's messages come back in the order they were sent"
    assert all(len(p) == 1 for p in partitions_of.values()), "a key always lands on one partition"
    assert len({p for ps in partitions_of.values() for p in ps}) > 1, "keys spread over partitions"


def test_topics_are_created_idempotently_with_configured_partitions(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_transactions="tx-idem",
        topic_verdicts="v-idem",
        topic_dlq="tx-idem.dlq",
        topic_lists="lists-idem",
        transactions_partitions=4,
        verdicts_partitions=3,
    )
    topics.create_topics(settings)
    second = topics.create_topics(settings)
    assert set(second.values()) == {"exists"}, "the lists topic was made compacted"
    found = topics.list_topics(settings)
    assert (found["tx-idem"], found["v-idem"], found["tx-idem.dlq"], found["lists-idem"]) == (4, 3, 1, 1)
    # An existing lists topic that is not compacted is reported, not changed behind the operator's back.
    plain = topic_factory("lists-plain")
    said = topics.create_topics(settings.model_copy(update={"topic_lists": plain}))[plain]
    assert said == "exists (but cleanup.policy=delete, expected compact: set it with kafka-configs.sh --alter)"


def _our_broker_processes(config_file: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(config_file).encode() in cmdline:
                found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_kafka_up_twice_is_harmless_and_down_leaves_no_broker_of_ours() -> None:
    # A second broker on its own port, so the session's broker is left alone.
    port = spare_broker_port(0)
    at_port = {"MOMOGUARD_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}
    local = local_broker.LocalBroker.from_bootstrap(f"127.0.0.1:{port}", DEFAULT_RUN_DIR)
    try:
        first = run_momoguard("kafka", "up", env=at_port, timeout=180)
        assert first.returncode == 0, first.stderr
        pid = local_broker.running_pid(local)
        assert pid is not None and _our_broker_processes(local.config_file) == [pid]

        second = run_momoguard("kafka", "up", env=at_port, timeout=180)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stderr
        assert local_broker.running_pid(local) == pid, "the second call sees the running broker, starts none"
        assert _our_broker_processes(local.config_file) == [pid]

        status = run_momoguard("kafka", "status", env=at_port, timeout=180)
        assert status.returncode == 0
        assert f"127.0.0.1:{port}" in status.stdout and "4.1" in status.stdout and "transactions" in status.stdout
    finally:
        down = run_momoguard("kafka", "down", env=at_port, timeout=180)
    assert down.returncode == 0, down.stderr
    assert _our_broker_processes(local.config_file) == []
    assert not local.pid_file.exists()
    again = run_momoguard("kafka", "down", env=at_port, timeout=180)
    assert again.returncode == 0 and "no Kafka broker of ours" in again.stdout


def test_a_stale_pid_file_is_cleared(tmp_path: Path) -> None:
    local = local_broker.LocalBroker(host="127.0.0.1", port=39999, home=tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    local.pid_file.write_text(str(dead.pid))
    assert local_broker.running_pid(local) is None
    assert not local.pid_file.exists()


def _listener_with_a_free_port_below() -> socket.socket:
    """A listening socket on some port P+1 whose neighbour P was free a moment ago."""
    for _ in range(50):
        held = socket.socket()
        held.bind(("127.0.0.1", 0))
        with socket.socket() as below:
            try:
                below.bind(("127.0.0.1", held.getsockname()[1] - 1))
            except OSError:
                held.close()
                continue
        held.listen()
        return held
    raise AssertionError("no port pair found in 50 tries")


def test_a_taken_controller_port_is_named_before_any_java_starts(tmp_path: Path) -> None:
    with _listener_with_a_free_port_below() as held:
        port = held.getsockname()[1] - 1
        local = local_broker.LocalBroker(host="127.0.0.1", port=port, home=tmp_path)
        with pytest.raises(BrokerError, match=rf"port {port + 1} \(its controller's\) on 127.0.0.1 is already in use"):
            local_broker.start(local)
    assert not local.pid_file.exists(), "nothing was started"
