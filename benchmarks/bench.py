"""`momoguard bench`: the Faust scorer against a plain confluent-kafka loop, latency, duplicates, model, generator.

One command, one run, the same data and machine for every figure. It writes reports/bench.json and adds a
dated row to docs/BENCHMARKS.md. Each part runs its scorer as a separate process, as an operator would.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from core.errors import MomoGuardError
from core.machine import describe_machine
from core.settings import PROJECT_ROOT, Settings
from kafka_ops.clients import librdkafka_config

log = logging.getLogger(__name__)

REPORT = PROJECT_ROOT / "reports" / "bench.json"
BENCHMARKS_MD = PROJECT_ROOT / "docs" / "BENCHMARKS.md"
PARTITIONS = 8


@dataclass(frozen=True)
class BenchTopics:
    transactions: str
    verdicts: str
    dlq: str


@contextmanager
def bench_topics(settings: Settings, name: str) -> Iterator[BenchTopics]:
    """Fresh topics for one part of the bench, deleted afterwards."""
    run = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    topics = BenchTopics(f"{run}-transactions", f"{run}-verdicts", f"{run}-dlq")
    admin = AdminClient({**librdkafka_config(settings), "log_level": 0})
    futures = admin.create_topics(
        [
            NewTopic(t, num_partitions=PARTITIONS if t != topics.dlq else 1, replication_factor=1)
            for t in (topics.transactions, topics.verdicts, topics.dlq)
        ]
    )
    for future in futures.values():
        future.result(30)
    try:
        yield topics
    finally:
        for future in admin.delete_topics([topics.transactions, topics.verdicts, topics.dlq]).values():
            try:
                future.result(30)
            except Exception as error:  # a leftover topic is untidy, not a failed benchmark
                log.warning("could not delete a bench topic: %s", error)


def scorer_env(settings: Settings, topics: BenchTopics, group: str, web_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "MOMOGUARD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MOMOGUARD_TOPIC_TRANSACTIONS": topics.transactions,
        "MOMOGUARD_TOPIC_VERDICTS": topics.verdicts,
        "MOMOGUARD_TOPIC_DLQ": topics.dlq,
        "MOMOGUARD_TRANSACTIONS_PARTITIONS": str(PARTITIONS),
        "MOMOGUARD_VERDICTS_PARTITIONS": str(PARTITIONS),
        "MOMOGUARD_CONSUMER_GROUP": group,
        "MOMOGUARD_WEB_PORT": str(web_port),
        "MOMOGUARD_MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MOMOGUARD_RUN_DIR": str(settings.run_dir),
    }


def preload(settings: Settings, topic: str, frame: pl.DataFrame) -> int:
    """Publish every row to `topic` before any scorer starts: a backlog to drain at full speed."""
    from replay.replayer import encode

    producer = Producer(
        {
            **librdkafka_config(settings),
            "linger.ms": 20,
            "compression.type": "lz4",
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 2_000_000,
            "log_level": 0,
        }
    )
    now = repr(time.time()).encode()
    count = 0
    for sent, key, body in encode(frame, "bench"):
        del sent
        producer.produce(topic, value=body + b',"event_time":' + now + b"}", key=key)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise MomoGuardError("the bench backlog was not acknowledged by the broker")
    return count


def verdict_count(settings: Settings, topic: str) -> int:
    consumer = Consumer({**librdkafka_config(settings), "group.id": "bench-watermarks", "log_level": 0})
    try:
        total = 0
        for p in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def verdict_timestamps(settings: Settings, topic: str, expect: int) -> np.ndarray:
    """The broker-side create times (seconds) of every verdict in `topic`."""
    consumer = Consumer(
        {
            **librdkafka_config(settings),
            "group.id": f"bench-read-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    consumer.subscribe([topic])
    stamps: list[float] = []
    deadline = time.monotonic() + 120
    try:
        while len(stamps) < expect and time.monotonic() < deadline:
            for message in consumer.consume(5000, timeout=0.5):
                if message.error() is None:
                    stamps.append(message.timestamp()[1] / 1000.0)
    finally:
        consumer.close()
    return np.sort(np.asarray(stamps))


def sustained_tps(stamps: np.ndarray) -> float:
    """Throughput over the middle 90 % of the verdicts: start-up and the last stragglers left out."""
    if stamps.size < 20:
        return float("nan")
    low, high = np.quantile(stamps, [0.05, 0.95])
    return float(0.9 * stamps.size / max(high - low, 1e-3))


def _wait_for(predicate: Any, timeout: float, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MomoGuardError(f"{what}: the scorer exited with {process.returncode}")
        if predicate():
            return
        time.sleep(0.5)
    raise MomoGuardError(f"{what}: timed out after {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def drain_rate(settings: Settings, frame: pl.DataFrame, command: list[str], name: str, log_dir: Path) -> float:
    """Preload the rows, start the scorer `command`, time how fast it answers them all."""
    with bench_topics(settings, name) as topics:
        n = preload(settings, topics.transactions, frame)
        env = scorer_env(settings, topics, f"bench-{name}-{uuid.uuid4().hex[:6]}", settings.web_port + 50)
        with (log_dir / f"bench-{name}.log").open("wb") as out:
            process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
            try:
                _wait_for(lambda: verdict_count(settings, topics.verdicts) >= n, 900, name, process)
            finally:
                _stop(process)
        return sustained_tps(verdict_timestamps(settings, topics.verdicts, n))


def latency_at(
    settings: Settings, frame: pl.DataFrame, rates: list[int], seconds: float, log_dir: Path
) -> dict[str, Any]:
    """p50/p99 of the Faust scorer at each steady offered rate (replayer on the same machine)."""
    from replay.replayer import Pace, replay
    from replay.report import build_report

    out: dict[str, Any] = {}
    with bench_topics(settings, "latency") as topics:
        env = scorer_env(settings, topics, f"bench-latency-{uuid.uuid4().hex[:6]}", settings.web_port + 51)
        with (log_dir / "bench-latency.log").open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "momoguard", "serve"],
                env=env,
                cwd=PROJECT_ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_for(lambda: _ready(settings.web_port + 51), 180, "latency scorer start", process)
                local = settings.model_copy(
                    update={
                        "topic_transactions": topics.transactions,
                        "topic_verdicts": topics.verdicts,
                    }
                )
                offset = 0
                for rate in rates:
                    rows = frame.slice(offset, int(rate * seconds))
                    offset += rows.height
                    result = replay(local, rows, Pace(rate=float(rate)), wait_s=60)
                    report = build_report(
                        result.sent, result.received, offered_rate_tps=rate, send_seconds=result.send_seconds
                    )
                    out[str(rate)] = {
                        "p50": report.latency_ms.p50,
                        "p99": report.latency_ms.p99,
                        "achieved_rate_tps": report.achieved_rate_tps,
                        "missing": report.missing,
                    }
            finally:
                _stop(process)
    return out


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            return bool(json.loads(response.read())["ready"])
    except OSError:
        return False


def model_alone(settings: Settings, frame: pl.DataFrame) -> dict[str, float]:
    """Microseconds per row of the champion's prediction alone (features prebuilt), one thread."""
    from registry import load_champion
    from schemas.features import build_features

    model = load_champion(settings)
    x = build_features(frame.head(50_000), model.feature_set)
    booster = model.booster
    out: dict[str, float] = {}
    for label, size, calls in (("batch_1", 1, 3000), ("batch_1000", 1000, 60)):
        started = time.perf_counter()
        for i in range(calls):
            start = (i * size) % (x.shape[0] - size)
            booster.predict(x[start : start + size], num_threads=1)
        out[label] = (time.perf_counter() - started) / (calls * size) * 1e6
    return out


def generator_seconds(log_dir: Path) -> float:
    """Kaggle-size generation time from the generator's own benchmark (one core)."""
    report = log_dir / "bench-generate.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.generator", "--json", str(report)],
        cwd=PROJECT_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    figures = json.loads(report.read_text())
    return float(figures["generate_s"])


def run_bench(settings: Settings, rows: int, latency_seconds: float, skip_generator: bool) -> dict[str, Any]:
    from benchmarks.duplicates import crash_and_restart, graceful_takeover
    from registry import champion_version
    from replay.load_test import load_source

    version = champion_version(settings)
    if version is None:
        raise MomoGuardError("no champion model to benchmark: run `make train` first")
    log_dir = REPORT.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    frame = load_source(None, rows + int(6000 * latency_seconds), seed=7)
    drain = frame.head(rows)
    log.info("bench: (a) Faust scorer (bulk path) draining %d transactions", rows)
    faust_tps = drain_rate(settings, drain, [sys.executable, "-m", "momoguard", "serve"], "faust", log_dir)
    log.info("bench: (a') two Faust workers draining %d transactions", rows)
    serve_two = [sys.executable, "-m", "momoguard", "serve", "--workers", "2"]
    faust_two_tps = drain_rate(settings, drain, serve_two, "faust-2", log_dir)
    log.info("bench: (b) baseline loop draining %d transactions", rows)
    baseline_tps = drain_rate(settings, drain, [sys.executable, "-m", "benchmarks.baseline"], "baseline", log_dir)
    log.info("bench: (c) latency at steady rates")
    latency = latency_at(settings, frame.slice(rows), [1000, 5000], latency_seconds, log_dir)
    log.info("bench: (d) duplicates after a graceful takeover and after a SIGKILL")
    short = drain.head(min(rows, 100_000))
    duplicates = {
        "graceful_takeover": graceful_takeover(settings, short, log_dir).as_json(),
        "sigkill": crash_and_restart(settings, short, log_dir).as_json(),
    }
    log.info("bench: (e) model alone")
    model = model_alone(settings, frame)
    generator = None if skip_generator else generator_seconds(log_dir)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "load_average": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "model_version": version,
        "rows": rows,
        "scorer_path": "bulk",
        "faust_tps": faust_tps,
        "faust_tps_2_workers": faust_two_tps,
        "baseline_tps": baseline_tps,
        "ratio": faust_tps / baseline_tps if baseline_tps else None,
        "ratio_2_workers": faust_two_tps / baseline_tps if baseline_tps else None,
        "latency_ms": {rate: {"p50": v["p50"], "p99": v["p99"]} for rate, v in latency.items()},
        "latency_detail": latency,
        "duplicates": duplicates,
        "model_us_per_row": model,
        "generator_seconds_kaggle_size": generator,
        "settings": {
            "max_batch": settings.max_batch,
            "max_fetch_bytes": settings.max_fetch_bytes,
            "in_flight_window": settings.in_flight_window,
        },
    }


def record(result: dict[str, Any], command: str) -> None:
    """Write reports/bench.json and add a dated row to docs/BENCHMARKS.md."""
    REPORT.write_text(json.dumps(result, indent=2) + "\n")
    lat = result["latency_ms"]
    dup = result["duplicates"]
    load = result["load_average"]
    row = (
        f"| {result['date'][:16]} | {result['faust_tps']:,.0f} | {result['faust_tps_2_workers']:,.0f} | "
        f"{result['baseline_tps']:,.0f} | {result['ratio']:.2f} / {result['ratio_2_workers']:.2f} | "
        f"{lat['1000']['p50']:.1f} / {lat['1000']['p99']:.1f} | {lat['5000']['p50']:.1f} / {lat['5000']['p99']:.1f} | "
        f"{dup['graceful_takeover']['duplicates']} | {dup['sigkill']['duplicates']} (window "
        f"{dup['sigkill']['in_flight_window']:,}) | {load['before']:.1f} / {load['after']:.1f} | "
        f"{result['model_us_per_row']['batch_1']:.1f} / {result['model_us_per_row']['batch_1000']:.2f} | "
        f"{_maybe(result['generator_seconds_kaggle_size'])} | `{command}` |"
    )
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else ""
    marker = "<!-- bulk bench rows -->"
    if marker not in text:
        text += (
            "\n## Scorer benchmark, bulk path (`make bench`)\n\n"
            f"Machine: {result['machine']}. Broker, scorer and load generator share the machine.\n\n"
            "| date (UTC) | Faust tx/s | 2 workers tx/s | baseline tx/s | ratio (1 / 2 workers) | p50/p99 ms @1k tx/s "
            "| p50/p99 ms @5k tx/s | duplicates, graceful takeover | duplicates, SIGKILL | load avg (before / after) "
            "| model µs/row (batch 1 / 1000) | generator s (Kaggle size) | command |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" + marker + "\n"
        )
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS_MD.write_text(text.replace(marker, row + "\n" + marker))


def _maybe(value: float | None) -> str:
    return "skipped" if value is None else f"{value:.1f}"
