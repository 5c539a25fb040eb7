"""`momoguard generate`: make a PaySim month (Kaggle CSV or Parquet) and report how faithful it is.

Heavy imports (numpy, polars, the generator) stay inside the command so `momoguard --help` stays fast.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from momoguard.errors import ConfigError, DataError
from momoguard.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from replay.fidelity import FidelityReport

DEFAULT_PAYSIM_DIR = PROJECT_ROOT.parent / "shared" / "data" / "paysim"
DEFAULT_REPORT_JSON = PROJECT_ROOT / "reports" / "generate-fidelity.json"
console = Console()


def generate(
    steps: Annotated[int, typer.Option("--steps", help="Hours (steps) to generate; 743 is the Kaggle month.")] = 743,
    scale: Annotated[
        float, typer.Option("--scale", help="Volume relative to Kaggle; 1.0 makes about 6.36 million rows.")
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed gives the same bytes.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Write here: .csv (Kaggle format) or .parquet.")] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Compare the month with Kaggle's figures and the real sample rows.")
    ] = False,
    paysim_dir: Annotated[
        Path,
        typer.Option(
            "--paysim-dir",
            envvar="MOMOGUARD_PAYSIM_SHARED",
            help="The shared PaySim folder (its samples/ holds the real Kaggle rows).",
        ),
    ] = DEFAULT_PAYSIM_DIR,
    report_json: Annotated[
        Path, typer.Option("--report-json", help="Where --report writes its JSON.")
    ] = DEFAULT_REPORT_JSON,
) -> None:
    """Generate a PaySim month with PaySim v1's mechanics, calibrated on the Kaggle data."""
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"--scale must be > 0, got {scale}")
    if out is None and not report:
        raise ConfigError("nothing to do: give --out PATH (.csv or .parquet) and/or --report")
    if out is not None:
        if out.suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError(f"--out must end in .csv or .parquet, got {out.name!r}")
        if not out.parent.is_dir():
            raise DataError(f"output folder does not exist: {out.parent}")
    samples_dir = paysim_dir / "samples"
    if report and not samples_dir.is_dir():
        raise DataError(f"no Kaggle samples in {samples_dir} (set --paysim-dir or MOMOGUARD_PAYSIM_SHARED)")

    from replay.generator import generate as make_month
    from replay.generator import write_paysim

    started = time.perf_counter()
    frame = make_month(steps=steps, scale=scale, seed=seed)
    made = time.perf_counter()
    console.print(f"generated {frame.height:,} rows over {steps} steps in {made - started:.1f} s")
    if out is not None:
        write_paysim(frame, out)
        console.print(f"wrote {out} in {time.perf_counter() - made:.1f} s")
    if report:
        from replay.fidelity import fidelity, load_samples

        result = fidelity(frame, load_samples(samples_dir))
        _print_report(result)
        report_json.parent.mkdir(parents=True, exist_ok=True)
        report_json.write_text(json.dumps(result.to_dict(), indent=1, default=str) + "\n")
        console.print(f"report written to {report_json}")


def _print_report(result: FidelityReport) -> None:
    table = Table(title=f"Fidelity of {result.rows:,} generated rows ({result.steps} steps)")
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_column("target")
    table.add_column("ok")
    for check in result.checks:
        table.add_row(check.name, f"{check.value:g}", check.target, "yes" if check.passed else "[red]NO[/red]")
    console.print(table)
    met = sum(c.passed for c in result.checks)
    console.print(f"{met} of {len(result.checks)} targets met")
    console.print(f"amount KS at the steps of the real rows: {result.notes['ks_at_the_real_rows_steps']}")
    facts = Table(title="Per type: generated (real samples)")
    for name in ("type", "fraud", "rows", "orig 0", "whole", "exceeds", "dest 0", "dest 0->0", "dest median"):
        facts.add_column(name)
    for row in result.facts:
        facts.add_row(
            str(row["type"]), str(row["isFraud"]), _pair(row, "rows", 7), _pair(row, "orig_zero"),
            _pair(row, "moves_whole"), _pair(row, "exceeds_balance"), _pair(row, "dest_zero"),
            _pair(row, "dest_zero_to_zero"), _pair(row, "dest_median"),
        )  # fmt: skip
    console.print(facts)


def _pair(row: dict[str, object], key: str, digits: int = 3) -> str:
    """One fact of a facts row as "generated (real)"."""

    def text(value: object) -> str:
        return "-" if value is None else f"{value:.{digits}g}"

    return f"{text(row.get(key))} ({text(row.get(f'{key}_real'))})"
