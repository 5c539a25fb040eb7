"""LightGBM fitting: a random hyperparameter search on validation AUPRC, bounded by trials and a time budget.

Every trial trains on the train window with early stopping on the validation window, so the search and
the stopping never see the test window. Class imbalance is handled twice: genuine train rows may be
down-sampled (`train_genuine_fraction`, each kept row weighted back up, so the loss still sees the true
mix while a trial costs a fraction of the time) and `scale_pos_weight` is searched between 1 and the square
root of the genuine/fraud ratio. On PaySim the best trials keep it near 1: up-weighting fraud pushes scores
against 0 and 1 and costs AUPRC, so the first (default) trial uses 1. The best trial's booster is the model.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import average_precision_score

from training.errors import TrainingError

logger = logging.getLogger(__name__)

MAX_ROUNDS = 2000
EARLY_STOPPING_ROUNDS = 30


@dataclass(frozen=True)
class Sample:
    """Feature rows, their labels and (for a down-sampled train window) their weights."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None = None

    @property
    def imbalance(self) -> float:
        """Genuine weight over fraud weight."""
        w = np.ones(len(self.y)) if self.weight is None else self.weight
        fraud = float(w[self.y == 1].sum())
        return float(w[self.y == 0].sum()) / fraud if fraud else math.inf


@dataclass(frozen=True)
class Trial:
    """One hyperparameter trial and how it did on the validation window."""

    number: int
    params: dict[str, Any]
    validation_auprc: float
    best_iteration: int
    seconds: float


@dataclass
class SearchResult:
    """The best booster of the search and every trial that ran."""

    booster: lgb.Booster
    best: Trial
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0


def base_params(num_threads: int, seed: int) -> dict[str, Any]:
    """Parameters every trial shares."""
    return {
        "objective": "binary",
        "metric": "average_precision",
        "verbosity": -1,
        "num_threads": num_threads,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        # Lets min_child_samples change between trials on one Dataset.
        "feature_pre_filter": False,
    }


def sample_params(rng: np.random.Generator, imbalance: float, first: bool) -> dict[str, Any]:
    """One point of the search space; the first trial is a sound default so a short budget still works."""
    top_weight = math.sqrt(max(imbalance, 1.0))
    if first:
        return {
            "learning_rate": 0.1,
            "num_leaves": 63,
            # Leaves of at least 100 rows: on near-separable PaySim, tiny leaves memorise single rows.
            "min_child_samples": 100,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.9,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "scale_pos_weight": 1.0,
        }
    return {
        "learning_rate": float(np.exp(rng.uniform(math.log(0.03), math.log(0.3)))),
        "num_leaves": int(rng.integers(8, 128)),
        "min_child_samples": int(np.exp(rng.uniform(math.log(10), math.log(400)))),
        "feature_fraction": float(rng.uniform(0.6, 1.0)),
        "bagging_fraction": float(rng.uniform(0.6, 1.0)),
        "bagging_freq": 1,
        "lambda_l2": float(np.exp(rng.uniform(math.log(1e-3), math.log(10.0)))),
        "scale_pos_weight": float(np.exp(rng.uniform(0.0, math.log(top_weight)))),
    }


def search(
    train: Sample,
    validation: Sample,
    feature_names: list[str],
    *,
    trials: int,
    time_budget_s: float,
    num_threads: int,
    seed: int = 0,
) -> SearchResult:
    """Run up to `trials` trials, starting no new one once `time_budget_s` has passed; keep the best."""
    if not (0 < int(train.y.sum()) < len(train.y)):
        raise TrainingError("the train window needs both fraud and genuine rows")
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    train_set, val_set = _datasets(train, validation, feature_names)
    done: list[Trial] = []
    best_booster: lgb.Booster | None = None
    best_auprc = -1.0
    for number in range(trials):
        if number and time.perf_counter() - started > time_budget_s:
            logger.info("time budget of %.0fs spent after %d trials", time_budget_s, number)
            break
        params = sample_params(rng, train.imbalance, first=number == 0)
        trial_started = time.perf_counter()
        booster = _train(params, train_set, val_set, num_threads, seed)
        scores = booster.predict(validation.x, num_iteration=booster.best_iteration)
        auprc = float(average_precision_score(validation.y, scores))
        trial = Trial(number, params, auprc, int(booster.best_iteration), time.perf_counter() - trial_started)
        done.append(trial)
        logger.info(
            "trial %d: validation AUPRC %.5f at %d rounds (%.1fs)", number, auprc, trial.best_iteration, trial.seconds
        )
        if auprc > best_auprc:
            best_booster, best_auprc = booster, auprc
    if best_booster is None:
        raise TrainingError(f"no trial ran (trials={trials})")
    best = max(done, key=lambda t: t.validation_auprc)
    return SearchResult(_trimmed(best_booster), best, done, time.perf_counter() - started)


def _datasets(train: Sample, validation: Sample, feature_names: list[str]) -> tuple[lgb.Dataset, lgb.Dataset]:
    # Built once and reused by every trial (binning a million rows is not free).
    train_set = lgb.Dataset(
        train.x, label=train.y, weight=train.weight, feature_name=feature_names, free_raw_data=False
    )
    val_set = lgb.Dataset(validation.x, label=validation.y, reference=train_set, free_raw_data=False)
    return train_set, val_set


def _train(
    params: dict[str, Any], train_set: lgb.Dataset, val_set: lgb.Dataset, num_threads: int, seed: int
) -> lgb.Booster:
    return lgb.train(
        {**base_params(num_threads, seed), **params},
        train_set,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[val_set],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )


def _trimmed(booster: lgb.Booster) -> lgb.Booster:
    # Keep only the rounds early stopping chose, so booster.predict(X) needs no num_iteration argument.
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
