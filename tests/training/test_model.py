"""Behavioural tests of a trained model (invariance, direction, minimum function) and of the search."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import polars as pl

from schemas.features import build_features, feature_names
from tests.training.conftest import Trained
from training import model


def scores(booster: lgb.Booster, frame: pl.DataFrame) -> np.ndarray:
    return np.asarray(booster.predict(build_features(frame)))


def test_renaming_accounts_does_not_change_the_score(trained: Trained, kaggle_frame: pl.DataFrame) -> None:
    renamed = kaggle_frame.with_columns(
        nameOrig=pl.format("C9{}", pl.int_range(pl.len())),
        nameDest=pl.col("nameDest").str.slice(0, 1) + pl.format("77{}", pl.int_range(pl.len())),
    )
    np.testing.assert_array_equal(scores(trained.booster, renamed), scores(trained.booster, kaggle_frame))


def test_moving_the_whole_balance_raises_a_transfer_score(trained: Trained, kaggle_frame: pl.DataFrame) -> None:
    transfers = kaggle_frame.filter((pl.col("type") == "TRANSFER") & (pl.col("oldbalanceOrg") > 1000)).head(200)
    whole = transfers.with_columns(amount=pl.col("oldbalanceOrg"))
    part = transfers.with_columns(amount=pl.col("oldbalanceOrg") * 0.4)
    assert transfers.height == 200
    raised = scores(trained.booster, whole) > scores(trained.booster, part)
    assert raised.mean() > 0.95
    assert np.median(scores(trained.booster, whole)) > 0.5 > np.median(scores(trained.booster, part))


def test_payments_and_cash_ins_score_low(trained: Trained, kaggle_frame: pl.DataFrame) -> None:
    fraud = scores(trained.booster, kaggle_frame.filter(pl.col("isFraud") == 1))
    for kind in ("PAYMENT", "CASH_IN"):
        rows = kaggle_frame.filter(pl.col("type") == kind)
        assert rows.height > 100
        low = scores(trained.booster, rows)
        assert low.max() < trained.threshold, kind
        assert low.max() < np.quantile(fraud, 0.05), kind


def test_search_runs_every_trial_within_budget_and_keeps_the_best(windowed: pl.DataFrame) -> None:
    x, y = build_features(windowed), windowed["isFraud"].to_numpy()
    train = windowed["step"].to_numpy() <= 30
    args = (model.Sample(x[train], y[train]), model.Sample(x[~train], y[~train]), feature_names())
    result = model.search(*args, trials=3, time_budget_s=600, num_threads=1, seed=3)
    assert [t.number for t in result.trials] == [0, 1, 2]
    assert result.best.validation_auprc == max(t.validation_auprc for t in result.trials)
    assert result.booster.current_iteration() == result.best.best_iteration
    assert 1 <= result.best.params["scale_pos_weight"] <= np.sqrt(args[0].imbalance)
    # A spent budget still runs the first (default) trial, and no other.
    assert len(model.search(*args, trials=5, time_budget_s=1e-9, num_threads=1).trials) == 1
