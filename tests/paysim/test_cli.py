"""`momoguard generate` as a user runs it: files written, a report, one-line errors for bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from momoguard.cli import main
from paysim.reader import ReadReport, load_paysim
from tests.support.cli import run_momoguard


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_momoguard("generate", *args)


def test_generate_writes_a_kaggle_csv_and_a_report(tmp_path: Path) -> None:
    out, report = tmp_path / "month.csv", tmp_path / "fidelity.json"
    done = run("--steps", "100", "--scale", "0.02", "--seed", "3", "--out", str(out), "--report",
               "--report-json", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[0] == (
        "step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,newbalanceDest,"
        "isFraud,isFlaggedFraud"
    )
    read = ReadReport(out)
    frame = load_paysim(out, report=read)
    assert read.malformed == 0 and frame["step"].max() <= 100
    result = json.loads(report.read_text())
    assert result["rows"] == frame.height
    assert {c["name"].split(" ")[0] for c in result["checks"]} >= {"CASH_IN", "fraud", "largest"}
    assert "targets met" in done.stdout


@pytest.mark.parametrize("name", ["month.parquet", "month.csv.gz"])
def test_every_output_reads_back_as_the_csv_does(tmp_path: Path, name: str) -> None:
    for path in (tmp_path / "month.csv", tmp_path / name):
        done = run("--steps", "24", "--scale", "0.01", "--seed", "5", "--out", str(path))
        assert done.returncode == 0, done.stderr
    as_csv, other = load_paysim(tmp_path / "month.csv"), load_paysim(tmp_path / name)
    assert other.height == as_csv.height > 0
    assert other.drop("tx_id").equals(as_csv.drop("tx_id"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0", "--out", "x.csv"], "--steps must be >= 1"),
        (["--scale", "0", "--out", "x.csv"], "--scale must be > 0"),
        (["--scale", "-2", "--out", "x.csv"], "--scale must be > 0"),
        (["--out", "month.xlsx"], "must end in .csv, .csv.gz, .parquet"),
        (["--out", "/no/such/folder/month.csv"], "output folder does not exist"),
        (["--report", "--samples", "/no/such/paysim"], "no Kaggle sample"),
        (["--seed", "-1", "--out", "x.csv"], "--seed"),
        (["--scale", "1e6", "--out", "x.csv"], "of memory, but"),
        ([], "nothing to do"),
        (["--steps", "many", "--out", "x.csv"], "--steps"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["momoguard", "generate", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert message in err
    assert len([line for line in err.splitlines() if line.startswith(("error", "Error"))]) == 1
