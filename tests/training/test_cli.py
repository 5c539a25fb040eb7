"""`momoguard train` and `evaluate` as a user runs them: whole files in any order and format, one-line errors."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import polars as pl
import pytest

from core.settings import PROJECT_ROOT, Settings
from momoguard.cli import main
from paysim.generator import write_paysim
from tests.support import processes
from tests.support.cli import run_momoguard
from tests.support.models import register_model
from tests.training.conftest import write_paysim_csv


@pytest.fixture
def registry_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A tmp registry whose champion is a small model trained on the real kaggle_frame, set in the environment."""
    settings = Settings(run_dir=tmp_path / "run", mlflow_tracking_uri="")
    register_model(settings, rounds=20, threshold=0.5, tmp=tmp_path)
    monkeypatch.setenv("MOMOGUARD_RUN_DIR", str(settings.run_dir))
    monkeypatch.setenv("MOMOGUARD_MLFLOW_TRACKING_URI", "")
    return settings


def momoguard(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI entry in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["momoguard", *args])
    code = 0
    try:
        main()
    except SystemExit as exited:
        code = int(exited.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def shuffled_samples(kaggle_frame: pl.DataFrame, folder: Path) -> dict[str, Path]:
    """The 10,245 real sample rows shuffled together, as CSV, gzipped CSV and Parquet."""
    rows = kaggle_frame.sample(fraction=1.0, shuffle=True, seed=1)
    paths = {kind: folder / f"shuffled.{kind}" for kind in ("csv", "csv.gz", "parquet")}
    for path in paths.values():
        write_paysim(rows, path)
    return paths


def test_evaluate_scores_every_row_of_an_unsorted_file_in_any_format(
    registry_env: Settings,
    kaggle_frame: pl.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = {}
    for kind, path in shuffled_samples(kaggle_frame, tmp_path).items():
        code, out, err = momoguard(monkeypatch, capsys, "evaluate", str(path))
        assert code == 0, err
        results[kind] = orjson.loads(out)
    csv = results["csv"]
    assert csv["n"] == kaggle_frame.height == 10_245 and csv["frauds"] == 633
    assert csv["rows_skipped"] == 0 and csv["files"][0]["rows"] == 10_245
    for kind in ("csv.gz", "parquet"):
        assert {k: v for k, v in results[kind].items() if k != "files"} == {
            k: v for k, v in csv.items() if k != "files"
        }, kind


def test_evaluate_reports_skipped_rows_and_fails_unless_allowed(
    registry_env: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = (PROJECT_ROOT / "tests/fixtures/paysim/kaggle_steps45-95_fraud_enriched.csv").read_text().splitlines()
    lines[10] = lines[10].replace("TRANSFER", "REFUND").replace("CASH_OUT", "REFUND")
    lines[20] = "45,PAYMENT,1.0"
    bad = tmp_path / "two-bad.csv.gz"
    bad.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    code, out, err = momoguard(monkeypatch, capsys, "evaluate", str(bad))
    result = orjson.loads(out)  # the metrics are printed all the same, with what was skipped
    assert (result["n"], result["rows_skipped"]) == (7_555, 2)
    assert [s["line"] for s in result["files"][0]["first_skipped"]] == [11, 21]
    assert code == 1 and "Traceback" not in err
    assert err.splitlines() == [
        f"error: 2 of 7,557 rows skipped as malformed ({bad}: 7,555 rows read, 2 skipped as malformed "
        "(first: line 11, unknown type REFUND; lines 11, 21)); fix the data, or allow them with --max-skipped 2 "
        "(MOMOGUARD_MAX_SKIPPED_ROWS)"
    ]

    code, out, err = momoguard(monkeypatch, capsys, "evaluate", str(bad), "--max-skipped", "2")
    assert code == 0 and orjson.loads(out)["rows_skipped"] == 2, err


def run_train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`momoguard train` as a user starts it: no Prefect server configured, a fresh run folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MOMOGUARD_"))}
    env |= {"MOMOGUARD_RUN_DIR": str(tmp_path / "run"), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return run_momoguard("train", *args, env=env, inherit_env=False, cwd=tmp_path)


@pytest.mark.parametrize("case", ["missing", "not paysim", "one step", "skipped rows", "unlabelled", "seed -1"])
def test_train_refuses_bad_input_in_one_line_before_prefect_starts(
    case: str, kaggle_frame: pl.DataFrame, windowed: pl.DataFrame, tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    if case == "not paysim":
        data.write_text("id,amount,label\n1,10.0,0\n")
    elif case == "one step":
        write_paysim(kaggle_frame.filter(pl.col("step") == 1), data)
    elif case == "skipped rows":
        write_paysim(windowed, data)
        data.write_text(data.read_text() + "40,PAYMENT,abc,C1,1.0,1.0,M2,0.0,0.0,0,0\n")
    elif case == "unlabelled":
        windowed.drop("isFraud", "isFlaggedFraud").write_parquet(data)
    args = ["--seed", "-1"] if case == "seed -1" else [str(data)]
    done = run_train(tmp_path, *args)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, done.stderr
    expected = {
        "missing": f"error: no such file: {data}",
        "not paysim": "is not a PaySim CSV",
        "one step": "need at least 3 distinct steps",
        "skipped rows": "1 of 10,246 rows skipped as malformed",
        "unlabelled": "not a PaySim Parquet file: no column(s) isFraud, isFlaggedFraud",
        "seed -1": "Invalid value for '--seed'",
    }[case]
    assert expected in errors[0]
    assert "Starting temporary server" not in done.stderr  # Prefect was never started
    assert not (tmp_path / "run" / "mlflow.db").exists()  # nor the registry


def test_a_train_stopped_with_sigterm_leaves_no_prefect_server_behind(windowed: pl.DataFrame, tmp_path: Path) -> None:
    data = write_paysim_csv(windowed, tmp_path / "good.csv")
    mark = uuid.uuid4().hex  # this train's own mark: it and what it starts, nothing else
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MOMOGUARD_"))}
    env |= {"MOMOGUARD_RUN_DIR": str(tmp_path / "run"), processes.SESSION_VARIABLE: mark}
    log = tmp_path / "train.log"
    with log.open("wb") as out:
        train = subprocess.Popen(
            [sys.executable, "-m", "momoguard", "train", str(data), "--trials", "50"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while "Starting temporary server" not in log.read_text() and time.monotonic() < deadline:
            assert train.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        assert "Starting temporary server" in log.read_text(), log.read_text()[-2000:]
        train.send_signal(signal.SIGTERM)
        assert train.wait(120) != 0
        with_mark = [p for p in processes.marked_processes(mark) if "uvicorn" in p.command]
        assert not with_mark, f"left running: {with_mark}"
    finally:
        if train.poll() is None:
            train.kill()
            train.wait(30)
        processes.stop(processes.marked_processes(mark))


@pytest.mark.usefixtures("prefect_harness")
def test_train_prints_every_figure_whole_at_60_columns_and_as_json(
    windowed: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow

    data = write_paysim_csv(windowed, tmp_path / "good.csv")
    for name, value in {"RUN_DIR": str(tmp_path / "run"), "MLFLOW_TRACKING_URI": "", "TUNING_TRIALS": "2",
                        "TUNING_TIME_BUDGET_S": "30", "COMPARE_FEATURE_SETS": "false"}.items():  # fmt: skip
        monkeypatch.setenv(f"MOMOGUARD_{name}", value)
    monkeypatch.setenv("COLUMNS", "60")  # and stdout is captured: a narrow, piped terminal
    code, shown, err = momoguard(monkeypatch, capsys, "train", str(data))
    assert code == 0, err
    run_id = re.search(r"run ([0-9a-f]{32})", shown)
    assert run_id, shown
    logged = mlflow.MlflowClient(Settings().tracking_uri).get_run(run_id.group(1)).data.metrics
    for key, digits in [("auprc", 5), ("roc_auc", 5), ("precision", 4), ("recall", 4), ("f1", 4),
                        ("false_block_rate", 6), ("fraud_amount_recall", 4)]:  # fmt: skip
        figure = f"{logged[f'test_{key}']:.{digits}f}"
        assert re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d])", shown), f"{key} {figure} not whole:\n{shown}"
    assert "…" not in shown and f"data: file {data} (10,245 rows read, 0 skipped as malformed)" in shown

    code, out, err = momoguard(monkeypatch, capsys, "train", str(data), "--json")
    assert code == 0, err
    result = orjson.loads(out)  # stdout holds the JSON and nothing else
    assert (
        result["version"] == "2"
        and result["test"]["n"] > 0
        and result["threshold"] == pytest.approx(result["test"]["threshold"])
    )
    assert result["data_source"] == f"file {data} (10,245 rows read, 0 skipped as malformed)"
