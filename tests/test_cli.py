"""The command line: bad input is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from momoguard.settings import PROJECT_ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "momoguard", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip(), "says what is wrong"


def test_help_lists_commands() -> None:
    done = run("--help")
    assert done.returncode == 0
    assert "kafka" in done.stdout and "topics" in done.stdout


def test_bad_option_value() -> None:
    done = run("kafka", "up", "--wait", "soon")
    assert_one_line_error(done)
    assert "--wait" in done.stderr


def test_unknown_command() -> None:
    assert_one_line_error(run("nonsense"))


def test_bad_setting_in_environment_is_one_line() -> None:
    done = run("kafka", "status", env={"MOMOGUARD_TRANSACTIONS_PARTITIONS": "many"})
    assert_one_line_error(done)
    assert done.stderr.strip().count("\n") == 0
    assert "transactions_partitions" in done.stderr


def test_unreachable_broker_is_one_line() -> None:
    done = run("kafka", "status", env={"MOMOGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert_one_line_error(done)
    assert "did not answer" in done.stderr


def test_missing_java_says_what_to_install(tmp_path: Path) -> None:
    # A PATH with python but without java or mvn.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    done = run("kafka", "up", env={"PATH": str(bin_dir), "MOMOGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:39191"})
    assert_one_line_error(done)
    assert "java not found" in done.stderr and "docker compose up kafka" in done.stderr
    assert done.stderr.strip().count("\n") == 0


def test_secrets_never_in_help() -> None:
    done = run("kafka", "up", "--help", env={"MOMOGUARD_KAFKA_SASL_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "module",
    [
        "momoguard.bench_sweep",
        "stream_app.baseline",
        "momoguard.config_table",
        "replay.calibrate",
        "replay.bench_generate",
    ],
)
def test_helper_modules_reject_unknown_arguments(module: str) -> None:
    """The `python -m` tools the docs name say what is wrong and change nothing (config_table rewrites README)."""
    readme = (PROJECT_ROOT / "README.md").read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", module, "--no-such-option"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "error:" in done.stderr
    assert (PROJECT_ROOT / "README.md").read_bytes() == readme
