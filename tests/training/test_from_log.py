"""`momoguard train --from-log`: trained, registered and evaluated on the live log and analysts' labels."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

import registry
from core.settings import Settings
from feedback.log import read_labels, read_scored
from stream_app.process import ScorerProcess as Process
from tests.support.cli import run_momoguard
from tests.support.harness import ScorerEnv, ScorerProcess, until
from tests.support.traffic import phases, send_in_phases, write_label_csv

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_train_from_log_learns_from_300_analyst_labels_and_reports_unknown_tx_ids(
    scorer_env: ScorerEnv,
    own_registry: Settings,
    start_scorer: Callable[..., ScorerProcess],
    start_sink: Callable[[], Process],
    tmp_path: Path,
) -> None:
    s = scorer_env.settings
    start_scorer().wait_ready()
    sink = start_sink()
    sent = phases(count=5, size=400, frauds=30, run="outcome")
    send_in_phases(s, sent)
    until(lambda: read_scored(s.feedback_dir, ["score"]).height == 2_000, "the log holds the traffic", timeout=120)

    # 300 labels, 30 frauds and 30 genuine a phase, and three for transactions the log never saw.
    labelled = [(str(tx["tx_id"]), tx["isFraud"] == 1) for phase in sent for tx in phase[:390]]
    chosen = [x for x in labelled if x[1]][:150] + [x for x in labelled if not x[1]][:150]
    unknown = [("never-scored-1", True), ("never-scored-2", False), ("never-scored-3", True)]
    env = {**scorer_env.env, "MOMOGUARD_LABEL_DELAY_S": "0"}
    done = run_momoguard("label", "--csv", str(write_label_csv(tmp_path / "labels.csv", chosen + unknown)), env=env)
    assert done.returncode == 0, done.stderr
    assert "labelled 303 transaction(s) (152 fraud, 151 genuine)" in done.stdout
    assert "3 tx_id(s) not in the scored log (yet), kept all the same: never-scored-1, never-scored-2" in done.stdout
    until(lambda: read_labels(s.feedback_dir).height == 303, "the labels in the log, unknown ones kept", timeout=60)
    assert sink.stop() == 0, sink.log_tail()

    env |= {"MOMOGUARD_TUNING_TRIALS": "2", "MOMOGUARD_TUNING_TIME_BUDGET_S": "30", "MOMOGUARD_LOG_MIN_FRAUDS": "100"}
    env = {k: v for k, v in env.items() if not k.startswith("PREFECT_")}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MOMOGUARD_"))}
    done = run_momoguard("train", "--from-log", "--json", env={**clean, **env}, inherit_env=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = orjson.loads(done.stdout)
    assert result["version"] == "2"
    assert result["data_source"].startswith("scored-transaction log: 2,000 rows (150 labelled fraud, 150 labelled")
    assert "3 label(s) for tx_ids not in the log" in result["data_source"]
    assert len(result["windows"]) == 3 and all("seconds" in w for w in result["windows"]), result["windows"]
    assert result["test"]["auprc"] is not None, result["test"]
    trained = registry.load_version(s, "2")  # registered whole, its drift reference with it
    assert trained.reference is not None and trained.reference.inputs[-1] == "score"


def test_train_from_log_without_enough_labelled_fraud_says_why_in_one_line(
    scorer_env: ScorerEnv, own_registry: Settings, tmp_path: Path
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MOMOGUARD_"))}
    done = run_momoguard("train", "--from-log", env={**clean, **scorer_env.env}, inherit_env=False, cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "holds 0 labelled fraud(s)" in errors[0] and "MOMOGUARD_LOG_MIN_FRAUDS" in errors[0]
