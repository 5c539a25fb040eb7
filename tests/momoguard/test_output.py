"""What people read: tables keep every number whole in a narrow terminal and when piped, help fits 80 columns.

Each table command also prints JSON (--json): the numbers a table must show whole are taken from there.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from core.settings import Settings
from core.tables import Column, print_table
from momoguard.cli import app
from momoguard.demo import print_next_steps
from paysim.cli import FACTS
from tests.support.cli import run_momoguard
from tests.support.models import register_model


def piped(*args: str, columns: int, env: dict[str, str] | None = None) -> str:
    """Stdout of `momoguard ARGS` written to a pipe, COLUMNS set; it must succeed."""
    done = run_momoguard(*args, env={**(env or {}), "COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def assert_whole(text: str, numbers: Iterable[str]) -> None:
    """Every number appears as a whole token (not cut, folded or ellipsised)."""
    assert "…" not in text
    for number in numbers:
        assert re.search(rf"(?<![\w.]){re.escape(number)}(?![\w.])", text), f"{number!r} not whole in:\n{text}"


@pytest.mark.parametrize("columns", [60, 80])
def test_generate_report_keeps_every_number_whole(columns: int, tmp_path: Path) -> None:
    args = ["generate", "--steps", "100", "--scale", "0.02", "--seed", "3", "--report"]
    args += ["--report-json", str(tmp_path / "fidelity.json")]
    result = json.loads(piped(*args, "--json", columns=columns))
    shown = piped(*args, columns=columns)
    checks = result["fidelity"]["checks"]
    assert_whole(shown, [f"{check['value']:g}" for check in checks])
    for row in result["fidelity"]["facts"]:
        for _, key, digits in FACTS:
            generated, real = (row.get(k) for k in (key, f"{key}_real"))
            assert_whole(shown, [f"{v:.{digits}g}" for v in (generated, real) if v is not None])
    assert "CASH_IN" in shown and "CASH_OUT" in shown and f"{sum(c['passed'] for c in checks)} of" in shown


@pytest.mark.parametrize("columns", [60, 80])
def test_models_list_keeps_every_number_whole(columns: int, tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path / "run", mlflow_tracking_uri="")
    register_model(settings, rounds=20, threshold=0.5, tmp=tmp_path)
    register_model(settings, rounds=30, threshold=0.123456, tmp=tmp_path)
    env = {"MOMOGUARD_RUN_DIR": str(settings.run_dir), "MOMOGUARD_MLFLOW_TRACKING_URI": ""}
    listed = json.loads(piped("models", "list", "--json", columns=columns, env=env))
    assert [v["version"] for v in listed["versions"]] == ["2", "1"]
    shown = piped("models", "list", columns=columns, env=env)
    for version in listed["versions"]:
        assert_whole(shown, [f"{version[k]:.4f}" for k in ("threshold", "auprc") if version[k] is not None])
        assert "champion" in shown
    assert f"registry: {settings.tracking_uri}" in shown  # one line, whole, however long


def test_a_table_too_wide_for_the_terminal_prints_plain_rows() -> None:
    out = Console(file=io.StringIO(), width=40, color_system=None)
    columns = [Column("name", text=True), *(Column(f"metric number {i}") for i in range(4))]
    print_table(out, columns, [["CASH_OUT", "0.123456", "1234567", "0.5", "1e-06"]], title="T")
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert text.splitlines() == [
        "T",
        "name CASH_OUT",
        "  metric number 0: 0.123456",
        "  metric number 1: 1234567",
        "  metric number 2: 0.5",
        "  metric number 3: 1e-06",
    ]
    wide = Console(file=io.StringIO(), width=120, color_system=None)
    print_table(wide, columns, [["CASH_OUT", "0.123456", "1234567", "0.5", "1e-06"]], title="T")
    header = wide.file.getvalue().splitlines()[1]  # type: ignore[attr-defined]
    assert header.split() == ["name", *[word for i in range(4) for word in ("metric", "number", str(i))]]


def commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    """Every command under a (Typer's own click) group, with the words that call it."""
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))


def test_every_help_fits_80_columns_with_nothing_cut() -> None:
    root = typer.main.get_command(app)
    for path, command in [((), root), *commands(root)]:
        done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert done.exit_code == 0, (path, done.output)
        lines = done.output.splitlines()
        assert max(len(line) for line in lines) <= 80, path
        cut = [line for line in lines if line.rstrip().endswith(("...", "…")) and not line.startswith("Usage:")]
        assert not cut, (path, cut)
        for param in command.params:
            for option in param.opts if param.param_type_name == "option" and not param.hidden else []:
                assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", done.output), (path, option)


def test_the_demo_summary_keeps_each_command_on_one_line(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "run"
    settings = Settings(run_dir=deep, mlflow_tracking_uri="")
    out = Console(file=io.StringIO(), width=60, color_system=None)
    print_next_steps(out, settings)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert f".venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri} --port 5000" in text.splitlines()[2]
    assert "make replay ARGS='--rate 2000 --rows 100000'" in text
