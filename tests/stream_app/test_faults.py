"""Faults against real processes: a killed worker, a lost registry, malformed traffic; nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from core.settings import PROJECT_ROOT
from kafka_ops import local_broker
from tests.support.harness import ScorerEnv, ScorerProcess, collect, free_port, produce
from tests.support.models import sample_rows
from tests.support.waiting import scorer_metric, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def replay_in_background(env: dict[str, str], report: Path, rows: int, rate: int, wait: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "momoguard",
            "replay",
            "--rows",
            str(rows),
            "--rate",
            str(rate),
            "--wait",
            str(wait),
            "--report",
            str(report),
        ],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _counts(figures: dict[str, object]) -> str:
    return ", ".join(f"{k} {figures[k]}" for k in ("sent", "verdicts", "missing", "duplicates"))


def test_a_worker_killed_mid_replay_and_restarted_loses_nothing(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], scorer: ScorerProcess, tmp_path: Path
) -> None:
    report = tmp_path / "killed.json"
    replay = replay_in_background(scorer_env.env, report, rows=8000, rate=1000, wait=150)
    time.sleep(3.0)
    assert scorer.stop(signal.SIGKILL) == -signal.SIGKILL
    second = start_scorer()
    second.wait_ready()
    out, err = replay.communicate(timeout=300)
    assert replay.returncode == 0, err[-2000:]
    figures = json.loads(report.read_text())
    print(f"RELIABILITY worker SIGKILLed and restarted: {_counts(figures)}")
    assert figures["sent"] == 8000 and figures["missing"] == 0, "every tx_id got at least one verdict"
    assert figures["verdicts"] == figures["sent"] + figures["duplicates"], "the report counts the duplicates"
    assert second.stop() == 0


def test_ten_percent_malformed_at_two_thousand_a_second(scorer_env: ScorerEnv, scorer: ScorerProcess) -> None:
    s = scorer_env.settings
    rows = sample_rows()
    messages: list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]] = []
    valid: set[str] = set()
    bad = 0
    for i in range(12_000):
        if i % 10 == 9:
            messages.append((b"junk", b'{"tx_id": "broken-' + str(i).encode() + b'", "amount": "NaN"', None))
            bad += 1
        else:
            tx = {**rows[i % len(rows)], "tx_id": f"mixed-{i}", "event_time": time.time()}
            valid.add(str(tx["tx_id"]))
            messages.append((str(tx["nameOrig"]).encode(), orjson.dumps(tx), None))
    produce(s.kafka_bootstrap, s.topic_transactions, messages, rate_per_s=2000)
    verdicts = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(valid), timeout=120)
    assert {str(v["tx_id"]) for v in verdicts.values} == valid
    dead = collect(s.kafka_bootstrap, s.topic_dlq, expect=bad, decode=False, timeout=60)
    assert len(dead.raw) == bad and all(h["momoguard.reason"] == b"not_json" for h in dead.headers)

    # It kept up: the backlog is gone once the last verdicts are out (the lag gauge follows within seconds).
    def lags() -> list[float]:
        lines = urlopen(f"{scorer_env.web}/metrics").splitlines()
        return [float(line.split()[-1]) for line in lines if line.startswith("momoguard_consumer_lag{")]

    wait_until("consumer lag by partition", lags, lambda values: bool(values) and max(values) == 0)
    assert scorer.stop() == 0


def urlopen(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_scoring_goes_on_when_the_registry_goes_away(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], tmp_path: Path
) -> None:
    # A real MLflow tracking server in front of the session's registry store, stopped mid-run.
    port = free_port()
    store = scorer_env.env["MOMOGUARD_MLFLOW_TRACKING_URI"]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urlopen(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("mlflow server did not start")
        scorer_env.env["MOMOGUARD_MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
        scorer = start_scorer()
        scorer.wait_ready()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    s = scorer_env.settings
    rows = sample_rows()
    txs = [{**rows[i % len(rows)], "tx_id": f"noreg-{i}"} for i in range(3000)]
    produce(s.kafka_bootstrap, s.topic_transactions, [(b"k", orjson.dumps(t), None) for t in txs], rate_per_s=500)
    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(txs), timeout=120)
    assert {str(v["tx_id"]) for v in got.values} == {str(t["tx_id"]) for t in txs}
    assert {str(v["model_version"]) for v in got.values} == {"1"}
    # The lost registry is noticed (and scoring went on): the failed-reload counter moves.
    reloads = "momoguard_model_reloads_total"
    wait_until(
        "failed reloads", lambda: scorer_metric(scorer_env.web, reloads, outcome="unreachable"), lambda n: n >= 1
    )
    assert scorer.stop() == 0


def test_two_workers_one_killed_the_other_takes_over(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], tmp_path: Path
) -> None:
    first = start_scorer()
    second = start_scorer("--worker-index", "1")
    first.wait_ready()
    deadline = time.monotonic() + 120
    views: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        try:
            views = [json.loads(urlopen(f"http://127.0.0.1:{scorer_env.settings.web_port + i}/ready")) for i in (0, 1)]
            if all(v["partitions"] for v in views):
                break
        except OSError:
            pass
        time.sleep(0.5)
    else:
        logs = "\n".join(f"--- {w.log.name}\n{w.log.read_text()[-1500:]}" for w in (first, second))
        pytest.fail(f"both workers never held partitions: {views}\n{logs}")
    report = tmp_path / "takeover.json"
    replay = replay_in_background(scorer_env.env, report, rows=8000, rate=1000, wait=150)
    time.sleep(3.0)
    second.stop(signal.SIGKILL)
    killed_at = time.monotonic()
    # The survivor takes every partition once the group notices (session_timeout_s); the time is recorded,
    # not asserted (docs/RELIABILITY.md), and the deadline only bounds a broken run.
    wait_until(
        "partitions held by the survivor",
        lambda: len(json.loads(urlopen(f"{scorer_env.web}/ready"))["partitions"]),
        lambda held: held == scorer_env.settings.transactions_partitions,
        timeout=scorer_env.settings.session_timeout_s + 60,
    )
    took_over = time.monotonic() - killed_at
    out, err = replay.communicate(timeout=300)
    assert replay.returncode == 0, err[-2000:]
    figures = json.loads(report.read_text())
    print(f"RELIABILITY one of two workers SIGKILLed, takeover {took_over:.1f} s: {_counts(figures)}")
    assert figures["sent"] == 8000 and figures["missing"] == 0
    assert first.stop() == 0


def test_the_scorer_recovers_from_a_broker_restart(
    scorer_env: ScorerEnv, own_broker: local_broker.LocalBroker, scorer: ScorerProcess, tmp_path: Path
) -> None:
    report = tmp_path / "restart.json"
    replay = replay_in_background(scorer_env.env, report, rows=8000, rate=800, wait=180)
    time.sleep(4.0)
    local_broker.stop(own_broker)
    time.sleep(3.0)
    local_broker.start(own_broker)
    out, err = replay.communicate(timeout=400)
    assert replay.returncode == 0, err[-2000:]
    figures = json.loads(report.read_text())
    print(f"RELIABILITY broker restarted mid-replay: {_counts(figures)}")
    assert figures["sent"] == 8000 and figures["missing"] == 0, "nothing lost across the restart"
    assert scorer.proc.poll() is None, "the scorer recovered by itself"
    assert scorer.stop() == 0
