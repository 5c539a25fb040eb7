"""`momoguard generate`: make a PaySim month (Kaggle CSV, gzipped CSV or Parquet) and report how faithful it is.

Heavy imports (numpy, polars, the generator) stay inside the command so `momoguard --help` stays fast.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from core.errors import ConfigError
from core.settings import PROJECT_ROOT
from core.tables import Column, print_table
from paysim.kaggle import SAMPLES_DIR

if TYPE_CHECKING:
    from paysim.fidelity import FidelityReport

DEFAULT_REPORT_JSON = PROJECT_ROOT / "reports" / "generate-fidelity.json"


def generate(
    steps: Annotated[int, typer.Option("--steps", help="Hours (steps) to generate; 743 is the Kaggle month.")] = 743,
    scale: Annotated[
        float, typer.Option("--scale", help="Volume relative to Kaggle; 1.0 makes about 6.36 million rows.")
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed: the same seed gives the same bytes.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here: .csv (Kaggle format), .csv.gz or .parquet.")
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Compare the month with Kaggle's figures and the real sample rows.")
    ] = False,
    samples: Annotated[
        Path,
        typer.Option("--samples", help="Folder with the two real Kaggle sample CSVs.", show_default=False),
    ] = SAMPLES_DIR,
    report_json: Annotated[
        Path,
        typer.Option("--report-json", help="Where the report's JSON goes (reports/ by default).", show_default=False),
    ] = DEFAULT_REPORT_JSON,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object (nothing else on stdout).")
    ] = False,
    repeat_clients: Annotated[
        bool,
        typer.Option(
            "--repeat-clients",
            help="Deviation from Kaggle (opt-in): accounts act again as originators at PaySim v2's repeat rates, "
            "and each mule cashes out under its own name what it received (docs/GENERATOR.md).",
        ),
    ] = False,
) -> None:
    """Generate a PaySim month with PaySim v1's mechanics, calibrated on the Kaggle data.

    A month that would not fit in the memory available is refused before it is made.
    """
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"--scale must be > 0, got {scale}")
    if out is None and not report:
        raise ConfigError("nothing to do: give --out PATH (.csv, .csv.gz or .parquet) and/or --report")

    from paysim.fidelity import fidelity, load_samples
    from paysim.generator import check_output, write_paysim
    from paysim.generator import generate as make_month

    if out is not None:
        check_output(out)
    real = load_samples(samples) if report else None
    console = Console(stderr=as_json)  # with --json, stdout holds only the JSON
    started = time.perf_counter()
    frame = make_month(steps=steps, scale=scale, seed=seed, repeat_clients=repeat_clients)
    made = time.perf_counter()
    console.print(f"generated {frame.height:,} rows over {steps} steps in {made - started:.1f} s")
    result: dict[str, Any] = {
        "rows": frame.height,
        "steps": steps,
        "scale": scale,
        "seed": seed,
        "repeat_clients": repeat_clients,
        "out": None,
    }
    if out is not None:
        write_paysim(frame, out)
        console.print(f"wrote {out} in {time.perf_counter() - made:.1f} s", soft_wrap=True, highlight=False)
        result["out"] = str(out)
    if real is not None:
        checked = fidelity(frame, real)
        result["fidelity"] = checked.to_dict()
        print_report(console, checked)
        report_json.parent.mkdir(parents=True, exist_ok=True)
        report_json.write_text(json.dumps(result["fidelity"], indent=1, default=str) + "\n")
        console.print(f"report written to {report_json}", soft_wrap=True, highlight=False)
    if as_json:
        print(json.dumps(result, default=str))


def print_report(console: Console, result: FidelityReport) -> None:
    """The fidelity targets, then the per-type facts of the month beside the real samples'."""
    print_table(
        console,
        [Column("check", text=True), Column("value"), Column("target", text=True), Column("ok", text=True)],
        [[c.name, f"{c.value:g}", c.target, "yes" if c.passed else "[red]NO[/red]"] for c in result.checks],
        title=f"Fidelity of {result.rows:,} generated rows ({result.steps} steps)",
    )
    met = sum(c.passed for c in result.checks)
    console.print(f"{met} of {len(result.checks)} targets met")
    matched = ", ".join(f"{t} {ks:g}" for t, ks in result.notes["ks_at_the_real_rows_steps"].items())
    console.print(f"amount KS at the steps of the real rows: {matched}")
    print_table(
        console,
        [Column(name) for name in ("type", "fraud")] + [Column(header) for header, _, _ in FACTS],
        [
            [str(row["type"]), str(row["isFraud"]), *(_pair(row, key, digits) for _, key, digits in FACTS)]
            for row in result.facts
        ],
        title="Per type: generated (real samples)",
        key_columns=2,
    )


# The per-type facts shown: (header, key in the facts rows, significant digits).
FACTS = (
    ("rows", "rows", 7),
    ("orig 0", "orig_zero", 3),
    ("whole", "moves_whole", 3),
    ("exceeds", "exceeds_balance", 3),
    ("dest 0", "dest_zero", 3),
    ("dest 0->0", "dest_zero_to_zero", 3),
    ("dest median", "dest_median", 3),
)


def _pair(row: dict[str, object], key: str, digits: int) -> str:
    """One fact of a facts row as "generated (real)"."""

    def text(value: object) -> str:
        return "-" if value is None else f"{value:.{digits}g}"

    return f"{text(row.get(key))} ({text(row.get(f'{key}_real'))})"
