"""Training fixtures: PaySim frames made of real Kaggle sample rows, a trained model, a tmp registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from core.settings import Settings
from schemas.features import build_features, feature_names
from schemas.transaction import PAYSIM_COLUMNS
from training import model
from training.quality import choose_threshold


def spread_over_steps(frame: pl.DataFrame, steps: int, seed: int = 0) -> pl.DataFrame:
    """The rows given random steps 1..steps, sorted by step: real rows with fraud in every window.

    The samples themselves are unusable for time windows (steps 45-93 hold only fraud), so tests that
    need windows spread them out; the rows' content stays real Kaggle data.
    """
    rng = np.random.default_rng(seed)
    spread = frame.with_columns(step=pl.Series(rng.integers(1, steps + 1, frame.height), dtype=pl.Int32))
    return spread.sort("step", maintain_order=True)


@pytest.fixture(scope="session")
def windowed(kaggle_frame: pl.DataFrame) -> pl.DataFrame:
    return spread_over_steps(kaggle_frame, steps=40)


@dataclass(frozen=True)
class Trained:
    booster: lgb.Booster
    threshold: float


@pytest.fixture(scope="session")
def trained(windowed: pl.DataFrame) -> Trained:
    """A small model trained on the first 30 of 40 steps, its threshold the best F1 on the rest."""
    x = build_features(windowed)
    y = windowed["isFraud"].to_numpy()
    train = windowed["step"].to_numpy() <= 30
    result = model.search(
        model.Sample(x[train], y[train]), model.Sample(x[~train], y[~train]), feature_names(),
        trials=2, time_budget_s=60, num_threads=2,
    )  # fmt: skip
    threshold = choose_threshold(y[~train], result.booster.predict(x[~train]), "best_f1", 0.0)
    return Trained(result.booster, threshold)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings with a fresh local registry in tmp_path and a small, quick search."""
    yield Settings(
        run_dir=tmp_path / "run",
        mlflow_tracking_uri="",
        tuning_trials=2,
        tuning_time_budget_s=30,
        train_threads=2,
        compare_feature_sets=False,
    )


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Flows run against a throwaway Prefect database and server, one per test session.

    Prefect's harness stops its server only when its own teardown gets that far, and a server whose start
    timed out is left to atexit; here every temporary server Prefect knows of is stopped, whatever happened.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.testing.utilities import prefect_test_harness

    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield
    finally:
        for server in list(SubprocessASGIServer._instances.values()):
            server.stop()


def write_paysim_csv(frame: pl.DataFrame, path: Path) -> Path:
    """The frame as a Kaggle-format CSV (its header, no tx_id)."""
    frame.select(PAYSIM_COLUMNS).write_csv(path)
    return path
