"""`momoguard train`, `momoguard evaluate` and `momoguard models list|promote|rollback|challenger|compare`.

Heavy imports (MLflow, Prefect, LightGBM) stay inside the commands so `momoguard --help` stays fast.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

import registry
from core.errors import ConfigError, MomoGuardError
from core.settings import MAX_SEED, Settings
from core.tables import Column, print_table

if TYPE_CHECKING:
    from training.flow import RetrainResult

models_app = typer.Typer(
    help="List, promote and roll back registered fraud models; shadow a challenger and compare it live.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
console = Console()

JSON_HELP = "Print the result as one JSON object (nothing else on stdout)."
MAX_SKIPPED_HELP = "Malformed rows the data may hold before the command fails (default: MOMOGUARD_MAX_SKIPPED_ROWS, 0)."

_QUIET = ("alembic", "mlflow", "prefect", "httpx", "urllib3", "git")


class _ExpectedFailure(logging.Filter):
    """Drops Prefect's traceback of a flow or task that failed with a MomoGuardError: the CLI prints that
    error as its one line. Unexpected failures keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], MomoGuardError))


def _quiet_libraries() -> None:
    # Their INFO lines (database migrations, HTTP calls) bury the few lines a user wants to read.
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine"):
        logging.getLogger(name).addFilter(_EXPECTED_FAILURE)


_EXPECTED_FAILURE = _ExpectedFailure()


def train(
    csv: Annotated[
        Path | None,
        typer.Argument(
            help="A labelled PaySim file: Kaggle CSV, .csv.gz or Parquet. Without it, data is generated.",
            show_default=False,
        ),
    ] = None,
    rows: int | None = typer.Option(None, "--rows", min=1, help="About how many rows to generate."),
    steps: int | None = typer.Option(None, "--steps", min=3, help="How many hours (steps) to generate."),
    seed: int | None = typer.Option(None, "--seed", min=0, max=MAX_SEED, help="Seed of the generator and the search."),
    features: str | None = typer.Option(
        None, "--features", help="Feature set: pre_settlement (default), post_settlement or account_state."
    ),
    repeat_clients: bool | None = typer.Option(
        None,
        "--repeat-clients/--kaggle-clients",
        help="Generated data with repeat clients (a deviation from Kaggle, see docs/GENERATOR.md), or Kaggle's.",
    ),
    trials: int | None = typer.Option(None, "--trials", min=1, help="Hyperparameter trials."),
    time_budget: float | None = typer.Option(None, "--time-budget", min=1, help="Search budget in seconds."),
    max_skipped: int | None = typer.Option(None, "--max-skipped", min=0, help=MAX_SKIPPED_HELP),
    from_log: bool = typer.Option(
        False,
        "--from-log",
        help="Train on the scored-transaction log joined with its labels (MOMOGUARD_LABEL_DELAY_S: rows younger "
        "are left out, older unlabelled ones count as genuine).",
    ),
    serve: bool = typer.Option(
        False,
        "--serve",
        help="Serve the flow on MOMOGUARD_RETRAIN_CRON instead (needs a Prefect server); without FILE it trains "
        "on the log when that holds MOMOGUARD_LOG_MIN_FRAUDS labelled frauds, else on generated data.",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run the retrain flow: train a challenger, register it, promote it if it beats the champion."""
    _quiet_libraries()
    settings = Settings.overridden(
        train_rows=rows, train_steps=steps, train_seed=seed, feature_set=features, tuning_trials=trials,
        tuning_time_budget_s=time_budget, max_skipped_rows=max_skipped, train_repeat_clients=repeat_clients,
    )  # fmt: skip
    if from_log and csv is not None:
        raise ConfigError("give a data FILE or --from-log, not both")
    _check_inputs(settings, csv, from_log)  # in seconds, before Prefect takes its time to start
    from training.flow import retrain

    if serve:
        _serve(settings, csv)
        return
    with _local_prefect(settings):
        result = retrain(csv=str(csv) if csv else None, settings=settings, from_log="yes" if from_log else "no")
    if as_json:
        print(_json(_result_dict(result)))
    else:
        _print_result(result)


def _check_inputs(settings: Settings, path: Path | None, from_log: bool = False) -> None:
    """What the flow would find wrong with the data file, the log or the registry, found before the flow starts."""
    import registry
    from training import data

    if path is not None:
        frame, _ = data.labelled_file(path, settings.max_skipped_rows)
        data.split_by_step(frame, settings.validation_fraction, settings.test_fraction)
    if from_log:
        from training.flow import load_log

        logged, _ = load_log.fn(settings, settings.feature_set, True)
        assert logged is not None  # required: not enough labels raised
        data.split_by_step(logged.frame, settings.validation_fraction, settings.test_fraction, "second", "seconds")
    registry.check_reachable(settings)


@contextmanager
def _local_prefect(settings: Settings) -> Iterator[None]:
    """With no Prefect server configured, Prefect starts a temporary one: keep its database in the run
    folder (the shared ~/.prefect one may be locked by other processes), give it time to start, and make
    sure it stops with this process.

    Prefect stops that server at exit; a SIGTERM would end the process without running exit handlers and
    leave the server behind, so SIGTERM exits the Python way here (143, as a shell reports it).
    """
    from prefect.settings import get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    folder = settings.run_dir / "prefect"
    folder.mkdir(parents=True, exist_ok=True)
    defaults = {
        "server.database.connection_url": f"sqlite+aiosqlite:///{(folder / 'prefect.db').resolve()}",
        "server.ephemeral.startup_timeout_seconds": 120,
        # Its telemetry heartbeat races the first database migration and prints a "database is locked" trace.
        "server.analytics_enabled": False,
    }
    with temporary_settings(set_defaults=defaults):
        yield


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _serve(settings: Settings, csv: Path | None) -> None:
    from prefect.settings import get_current_settings

    from training.flow import retrain

    if not get_current_settings().api.url:
        raise ConfigError(
            "serving on a schedule needs a Prefect server: run `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (make schedule does both)"
        )
    console.print(f"serving flow 'retrain' on cron {settings.retrain_cron!r} (Ctrl-C to stop)")
    retrain.serve(
        name="momoguard-retrain",
        cron=settings.retrain_cron,
        parameters={"csv": str(csv.resolve()) if csv else None, "from_log": "no" if csv else "auto"},
    )


def _print_result(result: RetrainResult) -> None:
    e = result.evaluation
    console.print(f"data: {result.data_source}", soft_wrap=True, highlight=False)
    for window in result.windows:
        console.print(f"  {window}")
    measured = [(f"{result.feature_set} (v{result.version})", e.test)]
    if e.other_feature_set is not None:
        measured.append((f"{e.other_feature_set[0]} (compared)", e.other_feature_set[1]))
    # One row per metric, one column per model: narrow enough for any terminal, however many metrics.
    print_table(
        console,
        [Column("metric", text=True), *(Column(label) for label, _ in measured)],
        [[name, *(f"{getattr(m, key):.{digits}f}" for _, m in measured)] for name, key, digits in _METRICS],
        title=f"Test window ({result.trials} trials, {result.training_seconds:.0f}s of search)",
    )
    console.print(f"threshold: {e.threshold:.6f} (block when score >= threshold)")
    if e.review_test is not None:
        band = e.review_test
        console.print(
            f"review threshold: {band.review_threshold:.6f} (review below the block threshold, with "
            f"MOMOGUARD_REVIEW_TIER on): test {band.review_rate:.4%} to review, fraud reviewed or blocked "
            f"{band.recall_with_review:.4f}",
            soft_wrap=True,
        )
    if result.settled:
        console.print(result.settled, soft_wrap=True, highlight=False)
    verdict = "promoted to champion" if result.promoted else "not promoted"
    if result.challenger == result.version:
        verdict = "challenger (shadowing the champion)"
    console.print(f"{result.model_name} version {result.version}: {verdict}: {result.reason}", soft_wrap=True)
    console.print(
        f"champion now: {result.champion or 'none'}; challenger: {result.challenger or 'none'}; run {result.run_id}",
        soft_wrap=True,
    )


# The metrics train prints: (name, Metrics attribute, decimals).
_METRICS = (
    ("AUPRC", "auprc", 5),
    ("ROC AUC", "roc_auc", 5),
    ("precision", "precision", 4),
    ("recall", "recall", 4),
    ("F1", "f1", 4),
    ("false-block rate", "false_block_rate", 6),
    ("fraud-amount recall", "fraud_amount_recall", 4),
)


def _result_dict(result: RetrainResult) -> dict[str, Any]:
    e = result.evaluation
    other = e.other_feature_set
    return {
        "model_name": result.model_name,
        "version": result.version,
        "run_id": result.run_id,
        "promoted": result.promoted,
        "reason": result.reason,
        "champion": result.champion,
        "challenger": result.challenger,
        "settled": result.settled,
        "feature_set": result.feature_set,
        "data_source": result.data_source,
        "windows": result.windows,
        "trials": result.trials,
        "training_seconds": result.training_seconds,
        "threshold": e.threshold,
        "review_threshold": e.review_threshold,
        "review_test": None if e.review_test is None else asdict(e.review_test),
        "validation": e.validation.as_dict(),
        "test": e.test.as_dict(),
        "compared": None if other is None else {"feature_set": other[0], "test": other[1].as_dict()},
    }


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()  # NaN (an unmeasured figure) becomes null


def evaluate(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Labelled PaySim file(s): Kaggle CSV, .csv.gz or Parquet, scored as one.", show_default=False
        ),
    ],
    model: str = typer.Option("champion", "--model", help="`champion` or a version number."),
    max_skipped: int | None = typer.Option(None, "--max-skipped", min=0, help=MAX_SKIPPED_HELP),
) -> None:
    """Score labelled PaySim file(s) with a registered model and print the metrics as one JSON object.

    Rows skipped as malformed are counted in the JSON (rows_skipped, and per file under files); when more
    are skipped than allowed, the exit code is 1, after the JSON.
    """
    _quiet_libraries()
    import polars as pl

    import registry
    from paysim.reader import check_skipped
    from training import data
    from training.quality import measure

    settings = Settings.overridden(max_skipped_rows=max_skipped)
    read = [data.from_file(path) for path in paths]
    frame = pl.concat([f for f, _ in read])
    reports = [r for _, r in read]
    if frame.height == 0:  # nothing to measure: say how many rows were skipped, if any, rather than "no rows"
        check_skipped(reports, settings.max_skipped_rows)
    data.check_labelled(frame, ", ".join(str(p) for p in paths))
    registry.check_reachable(settings)
    loaded = registry.load_champion(settings) if model == "champion" else registry.load_version(settings, model)
    m = measure(frame["isFraud"].to_numpy(), loaded.score(frame), frame["amount"].to_numpy(), loaded.threshold)
    out = {
        "n": m.n,
        "frauds": m.frauds,
        "auprc": _finite(m.auprc),
        "roc_auc": _finite(m.roc_auc),
        "precision": m.precision,
        "recall": m.recall,
        "f1": m.f1,
        "threshold": m.threshold,
        "false_block_rate": m.false_block_rate,
        "fraud_amount_recall": m.fraud_amount_recall,
        "model_name": loaded.name,
        "model_version": loaded.version,
        "feature_set": loaded.feature_set,
        "rows_skipped": sum(r.malformed for r in reports),
        "files": [r.to_dict() for r in reports],
    }
    print(_json(out))
    sys.stdout.flush()
    check_skipped(reports, settings.max_skipped_rows)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@models_app.command("list", short_help="Every version: aliases, status, metrics.")
def list_models(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Show every version with its aliases, status, threshold and test metrics."""
    _quiet_libraries()

    settings = Settings()
    registry.check_reachable(settings)
    rows = registry.list_versions(settings)
    if as_json:
        print(_json({"model_name": settings.model_name, "registry": settings.tracking_uri, "versions": [
            {**asdict(r), **{k: _tag_number(getattr(r, k)) for k in _NUMBER_TAGS}}
            for r in rows
        ]}))  # fmt: skip
        return
    if not rows:
        console.print(f"no versions of {settings.model_name} yet: run `momoguard train`")
        return
    columns = [Column("version"), Column("alias", text=True), Column("status", text=True)]
    columns += [Column("features", text=True), Column("threshold"), Column("review")]
    columns += [Column("AUPRC"), Column("amount recall")]
    print_table(
        console,
        columns,
        [
            [
                r.version,
                ", ".join(r.aliases),
                r.status,
                r.feature_set.removesuffix("_settlement"),
                _num(r.threshold),
                _num(r.review_threshold) if r.review_threshold else "-",
                _num(r.auprc),
                _num(r.fraud_amount_recall),
            ]
            for r in rows
        ],
        title=f"{settings.model_name} versions",
    )
    # Reasons are long sentences: one line each under the table reads better than a folded column.
    for r in rows:
        if r.reason:
            console.print(f"v{r.version}: {r.reason}", soft_wrap=True, highlight=False)
    console.print(f"registry: {settings.tracking_uri}", soft_wrap=True, highlight=False)


_NUMBER_TAGS = ("threshold", "review_threshold", "auprc", "fraud_amount_recall")


def _tag_number(text: str) -> float | str | None:
    """A registry tag for JSON: its number, or the text itself when it is not one (None when unset)."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _num(text: str) -> str:
    try:
        return f"{float(text):.4f}"
    except ValueError:
        return text


@models_app.command("promote", short_help="Make a version champion.")
def promote(version: Annotated[str, typer.Argument(help="The version to make champion.")]) -> None:
    """Force a version to champion (the current one is remembered for rollback)."""
    _quiet_libraries()

    settings = Settings()
    registry.check_reachable(settings)
    previous = registry.make_champion(settings, version, "forced by `momoguard models promote`")
    if previous == version:
        console.print(f"version {version} already is champion")
    else:
        console.print(f"version {version} is champion (was {previous or 'none'})")


@models_app.command("rollback", short_help="Give champion back to the one before.")
def rollback() -> None:
    """Give the champion alias back to the version the current champion replaced."""
    _quiet_libraries()

    settings = Settings()
    registry.check_reachable(settings)
    current, previous = registry.rollback(settings)
    console.print(f"champion rolled back from version {current} to {previous}")


@models_app.command("challenger", short_help="Shadow the champion with a version.")
def set_challenger(
    version: Annotated[str | None, typer.Argument(help="The version to shadow with.", show_default=False)] = None,
    clear: bool = typer.Option(False, "--clear", help="Stop shadowing (remove the challenger alias)."),
) -> None:
    """Make a version the challenger: every scorer worker scores with it too from its next poll, writes its
    verdicts to the shadow topic and acts on none of them."""
    _quiet_libraries()

    settings = Settings()
    if clear == (version is not None):
        raise ConfigError("give a VERSION, or --clear")
    registry.check_reachable(settings)
    if clear:
        gone = registry.clear_challenger(settings, reason="cleared by `momoguard models challenger --clear`")
        console.print(f"no challenger now (was {gone or 'none'})")
        return
    assert version is not None
    previous = registry.make_challenger(settings, version, "set by `momoguard models challenger`")
    if previous == version:
        console.print(f"version {version} already is challenger")
    else:
        console.print(
            f"version {version} is challenger (was {previous or 'none'}); the scorer shadows it from its next poll"
        )


# Rows of `models compare`: (name, LiveFigures attribute, decimals).
_LIVE = (
    ("precision", "precision", 4),
    ("recall", "recall", 4),
    ("fraud-amount recall", "fraud_amount_recall", 4),
    ("false-block rate", "false_block_rate", 6),
    ("AUPRC", "auprc", 4),
    ("blocked (labelled rows)", "blocked", 0),
)


@models_app.command("compare", short_help="Champion vs challenger on live traffic.")
def compare(
    version: str | None = typer.Option(
        None, "--challenger", help="A challenger version (default: the challenger alias).", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Champion against challenger on the live traffic the challenger shadowed, as labelled so far.

    Figures count the labelled rows (from the decisions each model made at the time, as the scored-transaction
    log holds them); agreement counts every shadowed row.
    """
    _quiet_libraries()
    from training.live import compare_live
    from training.promotion import live_gate

    settings = Settings()
    registry.check_reachable(settings)
    live = compare_live(settings, version)
    gate = live_gate(settings, live)
    if as_json:
        print(_json({**live.as_dict(), "gate": {"outcome": gate.outcome, "reason": gate.reason}}))
        return
    since = live.since.isoformat(timespec="seconds") if live.since else "never"
    console.print(
        f"challenger v{live.challenger} against champion v{live.champion.versions or '-'}: {live.rows:,} transactions "
        f"shadowed since {since}, {live.labelled:,} labelled ({live.labelled_fraud:,} fraud)",
        soft_wrap=True,
        highlight=False,
    )
    agreement = "n/a" if live.agreement is None else f"{100 * live.agreement:.2f} %"
    console.print(f"agreement: {agreement} ({live.disagreements:,} decided differently)", highlight=False)
    sides = (("champion", live.champion), (f"challenger v{live.challenger}", live.challenger_figures))
    print_table(
        console,
        [Column("on labelled rows", text=True), *(Column(label) for label, _ in sides)],
        [[name, *(_figure(getattr(f, key), digits) for _, f in sides)] for name, key, digits in _LIVE],
        title="Live shadow comparison",
    )
    console.print(f"live gate: {gate.outcome}: {gate.reason}", soft_wrap=True, highlight=False)


def _figure(value: float, digits: int) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}" if digits else f"{int(value):,}"
