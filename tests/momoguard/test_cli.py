"""The command line: bad input is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from tests.support.cli import run_momoguard

COMMANDS = {
    "train", "evaluate", "serve", "generate", "replay", "bench", "demo", "config", "kafka", "topics", "offsets",
    "models", "lists", "log-sink", "label",
}  # fmt: skip


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_momoguard(*args, env=env, timeout=120)


def assert_one_line_error(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip(), "says what is wrong"


def test_help_lists_every_command_and_each_answers_its_own_help() -> None:
    done = run("--help")
    assert done.returncode == 0
    listed = done.stdout.split("Commands:", 1)[1].splitlines()
    assert {line.split()[0] for line in listed if line.strip()} == COMMANDS
    for command in sorted(COMMANDS):
        assert run(command, "--help").returncode == 0, command


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
        "benchmarks.sweep",
        "benchmarks.baseline",
        "core.settings_table",
        "paysim.calibrate",
        "benchmarks.generator",
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


def assert_single_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """Non-zero, no traceback, and exactly one line saying what is wrong; returns it."""
    assert_one_line_error(done)
    errors = [line for line in done.stderr.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_web_port_in_use_is_one_line_before_anything_starts(workers: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # No broker and no registry: the port is checked first.
        env = {"MOMOGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:1", "MOMOGUARD_RUN_DIR": str(tmp_path / "run")}
        done = run("serve", "--workers", workers, "--web-port", str(port), env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: web port 127.0.0.1:{port} is already in use: stop what holds it or choose another "
        "(--web-port or MOMOGUARD_WEB_PORT)"
    )


def test_a_negative_seed_is_one_line_for_every_command() -> None:
    for args in (["generate", "--out", "x.csv"], ["replay"], ["train"]):
        line = assert_single_error_line(run(*args, "--seed", "-1", env={"MOMOGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:1"}))
        assert "--seed" in line, args


def test_make_targets_use_the_broker_named_on_the_command_line(kafka_bootstrap: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MOMOGUARD_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP")}
    done = subprocess.run(
        ["make", "--no-print-directory", "kafka-status", f"KAFKA_BOOTSTRAP={kafka_bootstrap}"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"bootstrap: {kafka_bootstrap}" in done.stdout  # not the default 127.0.0.1:9092
