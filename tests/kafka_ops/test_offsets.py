"""`momoguard offsets show|skip` against the real broker and a real scorer: the manual way past a message."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kafka_ops import offsets
from tests.support.cli import run_momoguard
from tests.support.harness import ScorerEnv, ScorerProcess, collect
from tests.support.models import sample_rows

pytestmark = pytest.mark.kafka


def to_partition(bootstrap: str, topic: str, partition: int, tx_ids: list[str]) -> None:
    rows = sample_rows()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i, tx_id in enumerate(tx_ids):
        tx = {**rows[i % len(rows)], "tx_id": tx_id, "event_time": time.time()}
        producer.produce(topic, orjson.dumps(tx), key=tx_id.encode(), partition=partition)
    assert producer.flush(30) == 0


def commit(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
    finally:
        consumer.close()


def shown(env: dict[str, str], topic: str) -> list[dict[str, object]]:
    done = run_momoguard("offsets", "show", topic, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["partitions"])


def assert_refused(done: subprocess.CompletedProcess[str], says: str, code: int = 1) -> None:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr


def fill(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    """So many transactions into each partition."""
    for partition, count in counts.items():
        to_partition(bootstrap, topic, partition, [f"p{partition}-{i}" for i in range(count)])


def a_group(kafka_bootstrap: str) -> tuple[str, dict[str, str]]:
    """A consumer group of the test's own, and the environment that names it as the scorer's."""
    group = f"offsets-{uuid.uuid4().hex[:8]}"
    return group, {"MOMOGUARD_KAFKA_BOOTSTRAP": kafka_bootstrap, "MOMOGUARD_CONSUMER_GROUP": group}


def test_show_gives_committed_end_and_lag_of_every_partition(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("offsets", partitions=2)
    group, env = a_group(kafka_bootstrap)
    fill(kafka_bootstrap, topic, {0: 10, 1: 4})
    commit(kafka_bootstrap, group, topic, 0, 6)
    assert shown(env, topic) == [
        {"partition": 0, "start": 0, "end": 10, "committed": 6, "lag": 4},
        {"partition": 1, "start": 0, "end": 4, "committed": None, "lag": 4},  # nothing committed: all of it
    ]
    table = run_momoguard("offsets", "show", topic, env=env)
    assert table.returncode == 0 and group in table.stdout and "lag 8" in table.stdout
    assert_refused(run_momoguard("offsets", "show", "no-such-topic", env=env), "no topic 'no-such-topic'", code=2)


def test_skip_refuses_offsets_the_partition_does_not_hold_or_the_group_has_read(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("offsets", partitions=1)
    group, env = a_group(kafka_bootstrap)
    fill(kafka_bootstrap, topic, {0: 5})
    commit(kafka_bootstrap, group, topic, 0, 3)
    assert_refused(run_momoguard("offsets", "skip", topic, "0", "5", env=env), f"offset 5 is outside {topic}:0")
    assert_refused(run_momoguard("offsets", "skip", topic, "0", "2", env=env), "already reads")
    assert_refused(run_momoguard("offsets", "skip", topic, "1", "0", env=env), "has no partition 1", code=2)
    assert shown(env, topic)[0]["committed"] == 3, "nothing moved"
    done = run_momoguard("offsets", "skip", topic, "0", "4", env=env)  # offsets 3 and 4: two messages go unanswered
    assert done.returncode == 0, done.stderr
    assert "committed 5 (was 3); offsets 3..4 (2 messages) will get no verdict" in done.stdout
    assert shown(env, topic)[0] == {"partition": 0, "start": 0, "end": 5, "committed": 5, "lag": 0}


@pytest.mark.slow
def test_a_skipped_message_is_never_scored_and_its_neighbours_are(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]
) -> None:
    s = scorer_env.settings
    first = start_scorer()
    first.wait_ready()
    to_partition(s.kafka_bootstrap, s.topic_transactions, 0, [f"before-{i}" for i in range(20)])
    assert len(collect(s.kafka_bootstrap, s.topic_verdicts, expect=20).values) == 20
    args = ("offsets", "skip", s.topic_transactions, "0", "19")
    assert_refused(run_momoguard(*args, env=scorer_env.env), "stop the scorer workers first")
    assert first.stop() == 0
    deadline = time.monotonic() + 60
    while offsets.active_members(s) and time.monotonic() < deadline:
        time.sleep(0.5)
    (p0, *_) = shown(scorer_env.env, s.topic_transactions)
    assert (p0["committed"], p0["end"]) == (20, 20), "the scorer committed all it answered"

    # The message at offset 20 stands in for one that would wedge the scorer.
    to_partition(s.kafka_bootstrap, s.topic_transactions, 0, ["skip-me", "after-1", "after-2"])
    done = run_momoguard("offsets", "skip", s.topic_transactions, "0", "20", env=scorer_env.env)
    assert done.returncode == 0, done.stderr
    assert "committed 21 (was 20); offset 20 will get no verdict" in done.stdout
    second = start_scorer()
    second.wait_ready()
    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=22)
    ids = {str(v["tx_id"]) for v in got.values}
    assert {"after-1", "after-2"} <= ids and "skip-me" not in ids
    assert second.stop() == 0
