"""Exit codes tell the truth: a failure the CLI reports by exit code, not by exception, still exits non-zero."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, Settings
from tests.support.cli import run_momoguard
from tests.support.harness import ScorerEnv
from tests.support.models import register_model
from tests.support.registry_faults import spoil


def test_a_command_ending_in_typer_exit_exits_with_its_code() -> None:
    # Any command: one registered for the test on the real app, run through the real entry point.
    program = (
        "import sys, typer\n"
        "from momoguard import cli\n"
        "@cli.app.command('fail-quietly')\n"
        "def fail_quietly() -> None:\n"
        "    raise typer.Exit(3)\n"
        "sys.argv = ['momoguard', 'fail-quietly']\n"
        "cli.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3, done.stderr


@pytest.mark.parametrize("failing", ["raise MomoGuardError('no champion model')", "Settings(max_batch=0)"])
def test_the_error_line_goes_out_in_one_write(failing: str) -> None:
    # The workers of `serve --workers N` share one stderr: a line written in two parts (`print` writes the text,
    # then the newline) could be joined with another worker's. Record each write the entry point makes.
    program = (
        "import atexit, json, sys, typer\n"
        "from core.errors import MomoGuardError\n"
        "from core.settings import Settings\n"
        "from momoguard import cli\n"
        "writes = []\n"
        "class Recorder:\n"
        "    def write(self, text):\n"
        "        writes.append(text)\n"
        "        return len(text)\n"
        "    def flush(self):\n"
        "        pass\n"
        "atexit.register(lambda: sys.__stdout__.write(json.dumps(writes)))\n"
        "@cli.app.command('fail')\n"
        "def fail() -> None:\n"
        f"    {failing}\n"
        "sys.argv = ['momoguard', 'fail']\n"
        "sys.stderr = Recorder()\n"
        "cli.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0, done.stderr
    writes = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(writes) == 1, writes
    assert writes[0].startswith("error: ") and writes[0].endswith("\n") and writes[0].count("\n") == 1, writes


@pytest.mark.kafka
def test_replay_with_the_scorer_down_exits_1_and_still_writes_the_report(scorer_env: ScorerEnv, tmp_path: Path) -> None:
    report = tmp_path / "nobody-answers.json"
    args = ("replay", "--rows", "50", "--rate", "200", "--wait", "2", "--report", str(report))
    done = run_momoguard(*args, env=scorer_env.env)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert (
        last
        == f"error: 50 of 50 transactions got no verdict within 2 s (is `momoguard serve` running?); report {report}"
    )
    figures = json.loads(report.read_text())
    assert (figures["sent"], figures["verdicts"], figures["missing"]) == (50, 0, 50)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("registry_state", ["no champion", "no usable version"])
def test_serve_with_two_workers_that_both_fail_exits_non_zero(
    scorer_env: ScorerEnv, tmp_path: Path, registry_state: str
) -> None:
    own = Settings(run_dir=tmp_path / "registry", mlflow_tracking_uri="")
    if registry_state == "no usable version":
        register_model(own, rounds=20, threshold=0.5, tmp=tmp_path)
        spoil(own, "1", "unknown feature set")
    env = {**scorer_env.env, "MOMOGUARD_RUN_DIR": str(own.run_dir), "MOMOGUARD_MLFLOW_TRACKING_URI": own.tracking_uri}
    done = run_momoguard("serve", "--workers", "2", env=env)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    expected = "no champion model" if registry_state == "no champion" else "no usable model"
    assert len(errors) == 2 and all(expected in line for line in errors), errors
