"""`momoguard replay`: publish PaySim transactions, read the verdicts back, report and plot the outcome."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from core.errors import ConfigError, MomoGuardError
from core.settings import PROJECT_ROOT

if TYPE_CHECKING:
    import polars as pl

    from core.settings import Settings
    from paysim.reader import ReadReport
    from replay.replayer import Pace, ReplayLog
    from replay.report import ReplayReport

console = Console(stderr=True)


class VerdictsMissingError(MomoGuardError):
    """The replay ended with transactions that never got a verdict (the report is written all the same)."""


def load_source(data: Path | None, rows: int | None, seed: int, report: ReadReport | None = None) -> pl.DataFrame:
    """The rows to replay, in step order: a PaySim file (CSV, .csv.gz, Parquet; what it skipped goes into
    `report`), or `rows` generated ones (100,000 by default)."""
    if data is not None:
        from paysim.reader import load_paysim

        frame = load_paysim(data, report=report, by_step=True)
        return frame.head(rows) if rows else frame
    from paysim.generator import expected_rows, generate

    wanted = rows or 100_000
    # The generator's volume is random around its expectation: ask for a little more and cut.
    frame = generate(steps=743, scale=1.08 * wanted / expected_rows(743, 1.0), seed=seed)
    return frame.head(wanted)


def shifted(frame: pl.DataFrame, factor: float) -> pl.DataFrame:
    """The same transactions with every amount multiplied by `factor`: what drift looks like to the scorer."""
    import polars as pl

    return frame.with_columns(pl.col("amount") * factor)


def replay(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="A PaySim file (Kaggle CSV, .csv.gz or Parquet); without it, data is generated."),
    ] = None,
    rows: Annotated[int | None, typer.Option(min=1, help="How many transactions (default: 100,000 generated).")] = None,
    rate: Annotated[float | None, typer.Option(min=1, help="Steady offered rate, transactions per second.")] = None,
    max_rate: Annotated[bool, typer.Option("--max", help="Publish as fast as possible.")] = False,
    speedup: Annotated[
        float | None, typer.Option(min=0.0001, help="Replay PaySim time: one step (hour) lasts this many seconds.")
    ] = None,
    wait: Annotated[float, typer.Option(min=1, help="Seconds to wait for missing verdicts after sending.")] = 60.0,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the generated data.")] = 0,
    shift_amount: Annotated[
        float | None,
        typer.Option(
            "--shift-amount",
            min=0.0001,
            help="Multiply every amount by this (balances unchanged): a drifted month, for the drift alert.",
            show_default=False,
        ),
    ] = None,
    max_skipped: Annotated[
        int | None,
        typer.Option("--max-skipped", min=0, help="Malformed rows --data may hold before the exit code is 1."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Report path (default reports/replay-<time>.json).", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of the summary.")] = False,
) -> None:
    """Load test: publish transactions to Kafka at a steady rate and measure the verdicts that come back.

    Rows of the data file skipped as malformed are counted in the report (under input); when more are
    skipped than allowed, the exit code is 1, as it is when a verdict is missing.
    """
    from core.settings import Settings

    chosen = [name for name, on in (("--rate", rate), ("--max", max_rate), ("--speedup", speedup)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"choose one of --rate, --max, --speedup (got {' and '.join(chosen)})")
    settings = Settings.overridden(max_skipped_rows=max_skipped)
    from paysim.reader import ReadReport, check_data_file, check_skipped
    from replay.replayer import Pace, check_broker

    if data is not None:
        check_data_file(data)
    check_broker(settings)  # fail in seconds, before reading or generating data
    read = ReadReport(data) if data is not None else None
    frame = load_source(data, rows, seed, read)
    if shift_amount is not None:
        frame = shifted(frame, shift_amount)
    pace = Pace(rate=rate if rate else (None if max_rate or speedup else 1000.0), speedup=speedup)
    result = run_replay(settings, frame, pace, wait)
    summary = result.report
    summary.input = read.to_dict() if read is not None else {"generated": frame.height, "seed": seed}
    if shift_amount is not None:
        summary.input["amount_shift"] = shift_amount
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = report or PROJECT_ROOT / "reports" / f"replay-{stamp}.json"
    write_outputs(result, path)
    if as_json:
        typer.echo(json.dumps(summary.to_json()))
    else:
        print_summary(summary, path)
    if read is not None:
        check_skipped([read], settings.max_skipped_rows)
    if summary.missing:
        raise VerdictsMissingError(
            f"{summary.missing:,} of {summary.sent:,} transactions got no verdict within {wait:g} s "
            f"(is `momoguard serve` running?); report {path}"
        )


@dataclass(frozen=True)
class ReplayRun:
    """A replay's report, and its raw log for the plot."""

    report: ReplayReport
    log: ReplayLog


def run_replay(settings: Settings, frame: pl.DataFrame, pace: Pace, wait: float) -> ReplayRun:
    """Replay with a progress bar; the report plus the raw log for the plot."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from replay.replayer import replay as publish
    from replay.report import build_report

    started = time.monotonic()
    total = frame.height
    with Progress(
        TextColumn("[bold]replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("verdicts {task.fields[verdicts]:,}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("replay", total=total, rate="", verdicts=0)

        sending = {"until": 0.0}

        def on_progress(sent: int, verdicts: int) -> None:
            if sent < total or not sending["until"]:
                sending["until"] = time.monotonic()  # the rate shown is the sending rate, waits left out
            elapsed = max(sending["until"] - started, 1e-6)
            progress.update(task, completed=sent, rate=f"{sent / elapsed:,.0f} tx/s", verdicts=verdicts)

        log = publish(settings, frame, pace, wait_s=wait, on_progress=on_progress)
    offered = pace.rate
    if pace.speedup and log.sent:
        offered = len(log.sent) / max(log.send_seconds, 1e-9)
    summary = build_report(log.sent, log.received, offered_rate_tps=offered, send_seconds=log.send_seconds)
    return ReplayRun(summary, log)


def write_outputs(result: ReplayRun, path: Path) -> None:
    """The JSON report at `path` and the latency plot beside it (same name, .png)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.report.to_json(), indent=2) + "\n")
    plot_latency(result.log, path.with_suffix(".png"))


def plot_latency(log: ReplayLog, path: Path) -> None:
    """Latency over the replay (left) and its histogram (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from replay.report import latency_series

    xs, ys = latency_series(log.sent, log.received)
    fig, (over_time, histogram) = plt.subplots(1, 2, figsize=(12, 4.5))
    over_time.plot(xs, ys, ",", alpha=0.5)
    over_time.set(xlabel="seconds since the first transaction", ylabel="latency (ms)", title="Latency over time")
    if ys:
        over_time.set_yscale("log")
        histogram.hist(ys, bins=80, log=True)
    histogram.set(xlabel="latency (ms)", ylabel="verdicts", title=f"Latency histogram ({len(ys):,} verdicts)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_summary(summary: ReplayReport, path: Path) -> None:
    out = Console(soft_wrap=True)  # paths and figures stay on their line, to be copied whole
    lat = summary.latency_ms
    c = summary.confusion

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f} %"

    def rate(value: float | None) -> str:
        return "max" if value is None else f"{value:,.0f} tx/s"

    out.print(
        f"[bold]replay[/]: sent {summary.sent:,}, verdicts {summary.verdicts:,}, "
        f"missing {summary.missing:,}, duplicates {summary.duplicates:,}"
    )
    out.print(f"rate: offered {rate(summary.offered_rate_tps)}, achieved {rate(summary.achieved_rate_tps)}")
    out.print(
        f"latency ms: p50 {lat.p50:.1f}  p95 {lat.p95:.1f}  p99 {lat.p99:.1f}  max {lat.max:.1f}"
        if math.isfinite(lat.p50)
        else "latency: no verdicts"
    )
    out.print(
        f"confusion: tp {c.tp:,}  fp {c.fp:,}  tn {c.tn:,}  fn {c.fn:,};  precision "
        f"{pct(summary.precision)}, recall {pct(summary.recall)}, "
        f"fraud-amount recall {pct(summary.fraud_amount_recall)}"
    )
    d = summary.decisions
    out.print(
        f"decisions: allow {d.get('allow', 0):,}  review {d.get('review', 0):,}  block {d.get('block', 0):,};  "
        f"fraud reviewed or blocked {pct(summary.recall_with_review)};  by lists {summary.decided_by_list:,};  "
        f"late {summary.late:,}"
    )
    out.print(f"model versions: {summary.model_versions}")
    source = summary.input
    if "skipped" in source:
        out.print(f"input: {source['path']}: {source['rows']:,} rows read, {source['skipped']:,} skipped as malformed")
    out.print(f"report: {path}  plot: {path.with_suffix('.png')}")
