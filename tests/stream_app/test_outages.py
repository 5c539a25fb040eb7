"""Outages a worker must survive or report: a deleted output topic, the broker gone at SIGTERM, a dead agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from core.settings import PROJECT_ROOT
from kafka_ops import local_broker, topics
from replay.replayer import produce_waiting
from stream_app.process import get_json
from tests.support.harness import ScorerEnv, ScorerProcess, collect, produce
from tests.support.models import sample_rows

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def transactions(n: int, run: str) -> list[tuple[bytes | None, bytes, None]]:
    rows = sample_rows()
    out: list[tuple[bytes | None, bytes, None]] = []
    for i in range(n):
        tx = {**rows[i % len(rows)], "tx_id": f"{run}-{i}", "event_time": time.time()}
        out.append((str(tx["nameOrig"]).encode(), orjson.dumps(tx), None))
    return out


def ids(messages: list[tuple[bytes | None, bytes, None]]) -> set[str]:
    return {str(orjson.loads(value)["tx_id"]) for _, value, _ in messages}


def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept until the deletion is done
    admin.delete_topics([topic])[topic].result(30)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.5)


def test_the_verdicts_topic_deleted_and_recreated_mid_stream_loses_nothing(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], tmp_path: Path
) -> None:
    s = scorer_env.settings
    scorer_env.env["MOMOGUARD_STALL_TIMEOUT_S"] = "3"
    scorer = start_scorer()
    scorer.wait_ready()
    before = transactions(500, "before")
    produce(s.kafka_bootstrap, s.topic_transactions, before)
    assert {str(v["tx_id"]) for v in collect(s.kafka_bootstrap, s.topic_verdicts, expect=500).values} == ids(before)

    delete_topic(s.kafka_bootstrap, s.topic_verdicts)
    # Only once the deletion has reached the brokers: a verdict produced in the moment before, while the partition
    # still took writes, would be acknowledged and then deleted with the topic (seen once the scorer got fast).
    wait_for(lambda: s.topic_verdicts in scorer.health().get("missing_topics", []), "the scorer notices the loss")
    during = transactions(1000, "during")
    produce(s.kafka_bootstrap, s.topic_transactions, during, rate_per_s=500)
    wait_for(lambda: scorer.health()["status"] == "stalled", "/health fails: work waits, nothing moves")
    assert get_json(f"{scorer_env.web}/ready")["ready"] is False
    assert f"topic {s.topic_verdicts!r} does not exist" in scorer.log.read_text()

    topics.create_topics(s)
    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=1000)
    assert {str(v["tx_id"]) for v in got.values} == ids(during), "every verdict owed meanwhile arrives"
    wait_for(lambda: scorer.health()["status"] == "alive", "/health recovers")
    wait_for(lambda: "missing_topics" not in scorer.health(), "the topic is seen again")
    print(f"RELIABILITY verdicts topic deleted and recreated: 1000 sent meanwhile, {len(got.values)} verdicts")
    assert scorer.stop() == 0


def test_a_deleted_dead_letter_topic_is_recreated_when_allowed(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]
) -> None:
    s = scorer_env.settings
    scorer_env.env["MOMOGUARD_RECREATE_MISSING_TOPICS"] = "true"
    scorer = start_scorer()
    scorer.wait_ready()
    delete_topic(s.kafka_bootstrap, s.topic_dlq)
    produce(s.kafka_bootstrap, s.topic_transactions, [(b"C1", b"{broken", None)])
    dead = collect(s.kafka_bootstrap, s.topic_dlq, expect=1, decode=False, timeout=90)
    assert [h["momoguard.reason"] for h in dead.headers] == [b"not_json"]
    assert f"topic {s.topic_dlq!r} does not exist" in scorer.log.read_text()
    assert scorer.stop() == 0


def test_sigterm_with_the_broker_away_exits_within_the_bound_and_nothing_is_lost(
    scorer_env: ScorerEnv, own_broker: local_broker.LocalBroker, start_scorer: Callable[..., ScorerProcess]
) -> None:
    s = scorer_env.settings
    scorer_env.env["MOMOGUARD_SHUTDOWN_TIMEOUT_S"] = "8"
    scorer = start_scorer()
    scorer.wait_ready()
    sent = transactions(4000, uuid.uuid4().hex[:6])
    # The operator's producer keeps what the broker has not taken yet and sends it once it is back.
    producer = Producer(
        {"bootstrap.servers": own_broker.bootstrap, "linger.ms": 5, "message.timeout.ms": 600_000, "log_level": 0}
    )
    sender = threading.Thread(target=_send_paced, args=(producer, s.topic_transactions, sent, 1000.0))
    sender.start()
    time.sleep(2.0)
    local_broker.stop(own_broker)  # with traffic still arriving
    stopped = time.monotonic()
    scorer.proc.send_signal(signal.SIGTERM)
    code = scorer.proc.wait(timeout=8 + 30)  # unbounded before: it waited for the broker to return
    took = time.monotonic() - stopped
    print(f"RELIABILITY SIGTERM with the broker away: exited {code} after {took:.1f} s (bound 8 s)")
    local_broker.start(own_broker)
    sender.join(timeout=120)
    assert producer.flush(120) == 0
    again = start_scorer()
    again.wait_ready()
    got = collect(own_broker.bootstrap, s.topic_verdicts, expect=len(sent), timeout=180)
    assert {str(v["tx_id"]) for v in got.values} == ids(sent), "after the restart every transaction is answered"
    assert again.stop() == 0


def _send_paced(producer: Producer, topic: str, messages: list[tuple[bytes | None, bytes, None]], rate: float) -> None:
    started = time.monotonic()
    for i, (key, value, _) in enumerate(messages):
        produce_waiting(producer, topic, value, key)
        producer.poll(0)
        ahead = started + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


# A bug outside every per-message safety net, planted in a real worker: the batch step itself raises.
_PLANTED_BUG = """
import sys
import stream_app.agents as agents

def broken(*args, **kwargs):
    raise RuntimeError("planted bug")

agents.score_fetch = broken
sys.argv = ["momoguard", "serve"]
from momoguard.cli import main
main()
"""


def test_a_dead_agent_stops_the_worker_with_a_non_zero_exit(scorer_env: ScorerEnv, tmp_path: Path) -> None:
    s = scorer_env.settings
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _PLANTED_BUG],
            env={**os.environ, **scorer_env.env},
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: _ready(scorer_env.web), "the worker starts", timeout=120)
            produce(s.kafka_bootstrap, s.topic_transactions, transactions(1, "doomed"))
            code = proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert code == 3, text[-3000:]
    assert "the scoring agent died (RuntimeError: planted bug)" in text


def _ready(web: str) -> bool:
    try:
        return bool(get_json(f"{web}/ready").get("ready"))
    except OSError:
        return False
