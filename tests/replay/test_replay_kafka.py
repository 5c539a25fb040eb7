"""`momoguard replay` against the real broker and a real scorer, and its one-line errors."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest

from paysim.fidelity import load_samples
from paysim.generator import write_paysim
from tests.support.cli import run_momoguard
from tests.support.harness import ScorerEnv, ScorerProcess

REPORT_KEYS = {
    "sent",
    "verdicts",
    "missing",
    "duplicates",
    "offered_rate_tps",
    "achieved_rate_tps",
    "latency_ms",
    "confusion",
    "precision",
    "recall",
    "fraud_amount_recall",
    "model_versions",
    "input",
}


@pytest.mark.kafka
@pytest.mark.slow
def test_a_small_replay_through_the_real_scorer(scorer_env: ScorerEnv, scorer: ScorerProcess, tmp_path: Path) -> None:
    report_path = tmp_path / "replay.json"
    done = run_momoguard("replay", "--rows", "3000", "--rate", "1500", "--report", str(report_path), env=scorer_env.env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert REPORT_KEYS <= set(report)
    assert report["sent"] == 3000 and report["missing"] == 0 and report["duplicates"] == 0
    assert sum(report["confusion"].values()) == report["sent"], "every transaction is labelled and answered"
    assert report["model_versions"] == {"1": 3000}
    decisions = report["decisions"]
    assert sum(decisions.values()) == 3000 and decisions["review"] == 0, "review tier off: block/allow only"
    assert decisions["block"] == report["confusion"]["tp"] + report["confusion"]["fp"]
    assert report["decided_by_list"] == 0 and 0 <= report["late"] <= 3000
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    assert report["offered_rate_tps"] == 1500
    # Paced: never faster than offered. How close it gets depends on the machine's load, so that is only recorded.
    assert 0 < report["achieved_rate_tps"] <= 1500 * 1.1
    assert report_path.with_suffix(".png").stat().st_size > 10_000
    assert "missing 0" in done.stdout
    assert scorer.stop() == 0


@pytest.mark.kafka
@pytest.mark.slow
def test_a_replayed_file_is_sent_whole_and_its_skipped_rows_reported(
    scorer_env: ScorerEnv, scorer: ScorerProcess, tmp_path: Path
) -> None:
    rows = load_samples().sample(fraction=1.0, shuffle=True, seed=2)  # 10,245 real rows, not in step order
    data = tmp_path / "shuffled.csv.gz"
    write_paysim(rows, data)
    with gzip.open(data, "ab") as more:
        more.write(b"50,TRANSFER,not-a-number,C1,1.0,0.0,C2,0.0,0.0,1,0\n")
    report_path = tmp_path / "replay.json"
    done = run_momoguard("replay", "--data", str(data), "--max", "--report", str(report_path), env=scorer_env.env)
    report = json.loads(report_path.read_text())
    assert report["sent"] == rows.height and report["missing"] == 0
    assert report["input"] == {
        "path": str(data),
        "rows": rows.height,
        "skipped": 1,
        "first_skipped": [{"line": rows.height + 2, "reason": "a money field is not a finite number"}],
    }
    assert "10,245 rows read, 1 skipped as malformed" in done.stdout
    # The verdicts are all there, but a skipped row is a failure unless allowed.
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: 1 of 10,246 rows skipped as malformed")
    assert scorer.stop() == 0


def test_an_unreachable_broker_is_one_line_within_ten_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    done = run_momoguard("replay", "--rows", "10", env={"MOMOGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "did not answer" in done.stderr.strip().splitlines()[-1]
    # Interpreter and library start-up excluded, the broker check itself is bounded at 8 s.
    assert elapsed < 30


def test_a_missing_file_is_one_line(kafka_bootstrap: str, tmp_path: Path) -> None:
    done = run_momoguard(
        "replay", "--data", str(tmp_path / "nope.csv"), env={"MOMOGUARD_KAFKA_BOOTSTRAP": kafka_bootstrap}
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "no such file" in done.stderr.strip().splitlines()[-1]


def test_conflicting_pace_options_are_one_line() -> None:
    done = run_momoguard("replay", "--rate", "10", "--max", env={})
    assert done.returncode == 2 and "choose one of" in done.stderr
