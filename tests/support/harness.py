"""Scorer test harness: a real MLflow registry with a champion, unique topics, scorer worker processes."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import polars as pl
import pytest
from confluent_kafka import Consumer, Producer

from core.settings import DEFAULT_RUN_DIR, Settings
from kafka_ops import local_broker, topics
from stream_app import process
from tests.support.models import register_model, sample_rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="session")
def champion_registry(registry_dir: Path) -> Settings:
    """A SQLite MLflow store whose champion is a small model trained on the real Kaggle samples."""
    settings = Settings(mlflow_tracking_uri=f"sqlite:///{registry_dir / 'mlflow.db'}", run_dir=registry_dir)
    register_model(settings, rounds=40, threshold=0.5, tmp=registry_dir)
    return settings


@dataclass
class ScorerEnv:
    """One test's isolated scorer set-up: its topics, group, web port and registry."""

    settings: Settings
    env: dict[str, str] = field(default_factory=dict)

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"


@pytest.fixture
def scorer_env(
    kafka_bootstrap: str, topic_factory: Callable[..., str], champion_registry: Settings, tmp_path: Path
) -> ScorerEnv:
    values = {
        "kafka_bootstrap": kafka_bootstrap,
        "topic_transactions": topic_factory("transactions", partitions=4),
        "topic_verdicts": topic_factory("verdicts", partitions=4),
        "topic_dlq": topic_factory("dlq", partitions=1),
        "topic_lists": topic_factory("lists", partitions=1, config=dict(topics.LISTS_CONFIG)),
        # The closed loop's topics and log folder, the test's own too (docs/FEEDBACK.md).
        "topic_scored": topic_factory("scored", partitions=2),
        "topic_shadow": topic_factory("shadow", partitions=4),
        "topic_labels": topic_factory("labels", partitions=1),
        "scored_partitions": 2,
        "shadow_partitions": 4,
        "log_dir": str(tmp_path / "log"),
        "log_sink_group": f"sink-{uuid.uuid4().hex[:8]}",
        "log_roll_interval_s": 1.0,
        "transactions_partitions": 4,
        "verdicts_partitions": 4,
        "consumer_group": f"scorer-{uuid.uuid4().hex[:8]}",
        "web_port": free_port(),
        "reload_interval_s": 1.0,
        "mlflow_tracking_uri": champion_registry.mlflow_tracking_uri,
        "run_dir": champion_registry.run_dir,
    }
    env = {f"MOMOGUARD_{k.upper()}": str(v) for k, v in values.items()}
    return ScorerEnv(Settings(**values), env)  # type: ignore[arg-type]


class ScorerProcess(process.ScorerProcess):
    """`momoguard serve` for one test: its environment, its log in the test's folder; failures fail the test."""

    def __init__(self, scorer: ScorerEnv, log: Path, *args: str) -> None:
        super().__init__(scorer.web, log, env=scorer.env, args=args)

    def wait_ready(self, timeout: float = 120.0) -> dict[str, object]:
        try:
            return super().wait_ready(timeout)
        except process.ScorerNotReadyError as error:
            pytest.fail(str(error))


@pytest.fixture
def start_scorer(scorer_env: ScorerEnv, tmp_path: Path) -> Iterator[Callable[..., ScorerProcess]]:
    started: list[ScorerProcess] = []

    def start(*args: str) -> ScorerProcess:
        process = ScorerProcess(scorer_env, tmp_path / f"scorer-{len(started)}.log", *args)
        started.append(process)
        return process

    yield start
    for scorer in started:
        if scorer.proc.poll() is None:
            scorer.stop(signal.SIGKILL)


def wait_committed_to_end(settings: Settings, timeout: float = 60.0) -> None:
    """Wait until the scorer's group has committed every partition of the transactions topic to its end."""
    from confluent_kafka import TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.consumer_group})
    partitions = [TopicPartition(settings.topic_transactions, p) for p in range(settings.transactions_partitions)]
    deadline = time.monotonic() + timeout
    try:
        while True:
            ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
            committed = [tp.offset for tp in consumer.committed(partitions, timeout=10)]
            behind = [(p.partition, c, e) for p, c, e in zip(partitions, committed, ends, strict=True) if c < e and e]
            if not behind:
                return
            if time.monotonic() > deadline:
                pytest.fail(
                    f"offsets not committed to the end within {timeout} s: (partition, committed, end) {behind}"
                )
            time.sleep(0.5)
    finally:
        consumer.close()


def produce_in_background(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]], rate: float
) -> threading.Thread:
    """`produce` at a steady rate from a thread, started; join it to know every message is acknowledged."""
    sender = threading.Thread(target=produce, args=(bootstrap, topic, messages), kwargs={"rate_per_s": rate})
    sender.start()
    return sender


def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]],
    rate_per_s: float | None = None,
) -> None:
    """Send (key, value, headers) messages; optionally paced."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    started = time.monotonic()
    for i, (key, value, headers) in enumerate(messages):
        producer.produce(topic, key=key, value=value, headers=headers)
        producer.poll(0)
        if rate_per_s:
            ahead = started + i / rate_per_s - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    assert producer.flush(30) == 0


@dataclass
class Collected:
    values: list[dict[str, object]] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    headers: list[dict[str, bytes]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)  # each message's Kafka timestamp, seconds


def collect(bootstrap: str, topic: str, expect: int, timeout: float = 120.0, decode: bool = True) -> Collected:
    """Read a topic from the start until `expect` messages arrived (or the timeout), then a little more."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"collect-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got = Collected()
    deadline = time.monotonic() + timeout
    settle: float | None = None
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error():
                    continue
                got.raw.append(message.value())
                got.keys.append(message.key())
                got.headers.append(dict(message.headers() or []))
                got.timestamps.append(message.timestamp()[1] / 1000.0)
                if decode:
                    got.values.append(orjson.loads(message.value()))
            if len(got.raw) >= expect:
                settle = settle or time.monotonic() + 2.0  # catch duplicates arriving late
                if time.monotonic() > settle:
                    break
    finally:
        consumer.close()
    return got


def transactions(n: int, run: str) -> list[dict[str, object]]:
    """`n` valid transactions with unique tx_ids `run-0`, `run-1`, ... stamped now."""
    rows = sample_rows()
    return [{**rows[i % len(rows)], "tx_id": f"{run}-{i}", "event_time": time.time()} for i in range(n)]


def messages(txs: list[dict[str, object]]) -> list[tuple[bytes | None, bytes, None]]:
    """(key, value, headers) to `produce`: keyed by the originating account, as the operator publishes."""
    return [(str(tx["nameOrig"]).encode(), orjson.dumps(tx), None) for tx in txs]


def topic_size(bootstrap: str, topic: str, partitions: int) -> int:
    """Messages in `topic` (sum of its partitions' end offsets)."""
    from confluent_kafka import TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"size-{uuid.uuid4().hex[:8]}"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions))
    finally:
        consumer.close()


def held(scorer: ScorerEnv, index: int) -> set[str]:
    """The partitions worker `index` holds, by its /ready view (empty while it is not up)."""
    try:
        view = process.get_json(f"http://127.0.0.1:{scorer.settings.web_port + index}/ready")
    except OSError:
        return set()
    return {str(p) for p in view.get("partitions", [])}


def until(condition: Callable[[], object], what: str, timeout: float = 60.0, every: float = 0.25) -> None:
    """Wait for `condition` to hold, or fail the test saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(every)


def offline_scores(settings: Settings, txs: list[dict[str, object]], version: str) -> dict[str, float]:
    import registry
    from schemas.frame import FRAME_SCHEMA

    model = registry.load_version(settings, version)
    frame = pl.DataFrame(
        [{k: tx.get(k) for k in FRAME_SCHEMA} for tx in txs],
        schema=FRAME_SCHEMA,
        strict=False,
    )
    return dict(zip(frame["tx_id"].to_list(), model.score(frame).tolist(), strict=True))


@pytest.fixture
def own_registry(scorer_env: ScorerEnv, tmp_path: Path) -> Settings:
    """A registry of the test's own with a champion (version 1, as the session's), the scorer_env pointed at it:
    for tests that register, promote or shadow versions, which the session's other scorers must not see."""
    run_dir = tmp_path / "own-run"
    uri = f"sqlite:///{run_dir / 'mlflow.db'}"
    run_dir.mkdir()
    own = scorer_env.settings.model_copy(update={"mlflow_tracking_uri": uri, "run_dir": run_dir})
    register_model(own, rounds=40, threshold=0.5, tmp=run_dir)
    scorer_env.settings = own
    scorer_env.env |= {"MOMOGUARD_MLFLOW_TRACKING_URI": uri, "MOMOGUARD_RUN_DIR": str(run_dir)}
    return own


@pytest.fixture
def start_sink(scorer_env: ScorerEnv, tmp_path: Path) -> Iterator[Callable[[], process.ScorerProcess]]:
    """Start `momoguard log-sink` processes for the test's scorer_env (killed after the test if still running)."""
    started: list[process.ScorerProcess] = []

    def start() -> process.ScorerProcess:
        command = [sys.executable, "-m", "momoguard", "log-sink"]
        log = tmp_path / f"sink-{len(started)}.log"
        sink = process.ScorerProcess("", log, env=scorer_env.env, command=command)
        started.append(sink)
        return sink

    yield start
    for sink in started:
        if sink.proc.poll() is None:
            sink.stop(signal.SIGKILL)


@pytest.fixture
def scorer(start_scorer: Callable[..., ScorerProcess]) -> ScorerProcess:
    """One `momoguard serve` worker of the test's scorer_env, ready (stopped after the test if still running)."""
    worker = start_scorer()
    worker.wait_ready()
    return worker


@pytest.fixture
def own_broker(scorer_env: ScorerEnv) -> Iterator[local_broker.LocalBroker]:
    """A broker of the test's own, with the test's topics, that it may stop and start; the scorer_env points at it.

    The session's broker is left alone; the spare's port comes from the session broker's, so checkouts running
    their suites side by side never share one.
    """
    from tests.conftest import spare_broker_port

    local = local_broker.LocalBroker.from_bootstrap(f"127.0.0.1:{spare_broker_port(200)}", DEFAULT_RUN_DIR)
    local_broker.start(local)
    try:
        scorer_env.settings = scorer_env.settings.model_copy(update={"kafka_bootstrap": local.bootstrap})
        topics.create_topics(scorer_env.settings)
        scorer_env.env["MOMOGUARD_KAFKA_BOOTSTRAP"] = local.bootstrap
        yield local
    finally:
        local_broker.stop(local)
