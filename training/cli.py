"""`momoguard train`, `momoguard evaluate` and `momoguard models list|promote|rollback`.

Heavy imports (MLflow, Prefect, LightGBM) stay inside the commands so `momoguard --help` stays fast.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from momoguard.errors import ConfigError
from momoguard.settings import Settings

if TYPE_CHECKING:
    from training.flow import RetrainResult

models_app = typer.Typer(help="List, promote and roll back registered fraud models.", no_args_is_help=True)
console = Console()

_QUIET = ("alembic", "mlflow", "prefect", "httpx", "urllib3", "git")


def _quiet_libraries() -> None:
    # Their INFO lines (database migrations, HTTP calls) bury the few lines a user wants to read.
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def train(
    csv: Annotated[
        Path | None,
        typer.Argument(help="A labelled PaySim CSV (Kaggle header). Without it, data is generated."),
    ] = None,
    rows: int | None = typer.Option(None, "--rows", min=1, help="About how many rows to generate."),
    steps: int | None = typer.Option(None, "--steps", min=3, help="How many hours (steps) to generate."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the generator and the search."),
    features: str | None = typer.Option(
        None, "--features", help="Feature set: pre_settlement (default) or post_settlement."
    ),
    trials: int | None = typer.Option(None, "--trials", min=1, help="Hyperparameter trials."),
    time_budget: float | None = typer.Option(None, "--time-budget", min=1, help="Search budget in seconds."),
    serve: bool = typer.Option(
        False, "--serve", help="Serve the flow on MOMOGUARD_RETRAIN_CRON instead (needs a Prefect server)."
    ),
) -> None:
    """Run the retrain flow: train a challenger, register it, promote it if it beats the champion."""
    _quiet_libraries()
    overrides: dict[str, Any] = {
        "train_rows": rows, "train_steps": steps, "train_seed": seed, "feature_set": features,
        "tuning_trials": trials, "tuning_time_budget_s": time_budget,
    }  # fmt: skip
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    from training.flow import retrain

    if serve:
        _serve(settings, csv)
        return
    with _local_prefect(settings):
        result = retrain(csv=str(csv) if csv else None, settings=settings)
    _print_result(result)


@contextmanager
def _local_prefect(settings: Settings) -> Iterator[None]:
    """With no Prefect server configured, Prefect starts a temporary one: keep its database in the run
    folder (the shared ~/.prefect one may be locked by other processes) and give it time to start."""
    from prefect.settings import get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
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
        parameters={"csv": str(csv.resolve()) if csv else None},
    )


def _print_result(result: RetrainResult) -> None:
    e = result.evaluation
    console.print(f"data: {result.data_source}")
    for window in result.windows:
        console.print(f"  {window}")
    table = Table(title=f"Test window ({result.trials} trials, {result.training_seconds:.0f}s of search)")
    table.add_column("feature set")
    for name in ("AUPRC", "ROC AUC", "precision", "recall", "F1", "false-block rate", "fraud-amount recall"):
        table.add_column(name, justify="right")
    rows = [(f"{result.feature_set} (v{result.version})", e.test)]
    if e.other_feature_set is not None:
        rows.append((f"{e.other_feature_set[0]} (compared)", e.other_feature_set[1]))
    for label, m in rows:
        table.add_row(
            label, f"{m.auprc:.5f}", f"{m.roc_auc:.5f}", f"{m.precision:.4f}", f"{m.recall:.4f}",
            f"{m.f1:.4f}", f"{m.false_block_rate:.6f}", f"{m.fraud_amount_recall:.4f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"threshold: {e.threshold:.6f} (block when score >= threshold)")
    verdict = "promoted to champion" if result.promoted else "not promoted"
    console.print(f"{result.model_name} version {result.version}: {verdict}: {result.reason}")
    console.print(f"champion now: {result.champion or 'none'}; run {result.run_id}")


def evaluate(
    paths: Annotated[list[Path], typer.Argument(help="Labelled PaySim CSV file(s) (Kaggle header), scored as one.")],
    model: str = typer.Option("champion", "--model", help="`champion` or a version number."),
) -> None:
    """Score labelled PaySim CSV(s) with a registered model and print the metrics as one JSON object."""
    _quiet_libraries()
    import orjson
    import polars as pl

    from training import data, registry
    from training.evaluate import measure

    settings = Settings()
    frame = pl.concat([data.from_csv(path) for path in paths])
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
    }
    print(orjson.dumps(out).decode())


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@models_app.command("list")
def list_models() -> None:
    """Show every version with its aliases, status, threshold and test metrics."""
    _quiet_libraries()
    from training import registry

    settings = Settings()
    registry.check_reachable(settings)
    rows = registry.list_versions(settings)
    if not rows:
        console.print(f"no versions of {settings.model_name} yet: run `momoguard train`")
        return
    table = Table(title=f"{settings.model_name} versions", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("version", "alias", "status", "features", "threshold", "AUPRC", "amount recall"):
        table.add_column(name, no_wrap=True)
    for r in rows:
        table.add_row(
            r.version, ", ".join(r.aliases), r.status, r.feature_set.removesuffix("_settlement"),
            _num(r.threshold), _num(r.auprc), _num(r.fraud_amount_recall),
        )  # fmt: skip
    console.print(table)
    # Reasons are long sentences: one line each under the table reads better than a folded column.
    for r in rows:
        if r.reason:
            console.print(f"v{r.version}: {r.reason}", soft_wrap=True, highlight=False)
    console.print(f"registry: {settings.tracking_uri}", soft_wrap=True, highlight=False)


def _num(text: str) -> str:
    try:
        return f"{float(text):.4f}"
    except ValueError:
        return text


@models_app.command("promote")
def promote(version: Annotated[str, typer.Argument(help="The version to make champion.")]) -> None:
    """Force a version to champion (the current one is remembered for rollback)."""
    _quiet_libraries()
    from training import registry

    settings = Settings()
    registry.check_reachable(settings)
    previous = registry.make_champion(settings, version, "forced by `momoguard models promote`")
    if previous == version:
        console.print(f"version {version} already is champion")
    else:
        console.print(f"version {version} is champion (was {previous or 'none'})")


@models_app.command("rollback")
def rollback() -> None:
    """Give the champion alias back to the version the current champion replaced."""
    _quiet_libraries()
    from training import registry

    settings = Settings()
    registry.check_reachable(settings)
    current, previous = registry.rollback(settings)
    console.print(f"champion rolled back from version {current} to {previous}")
