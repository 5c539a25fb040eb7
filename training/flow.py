"""The Prefect flow `retrain`: load -> features -> split -> tune and train -> evaluate -> register -> promote.

`momoguard train` (and `make train`) checks its data file first, then runs the flow in-process with no Prefect
server; `momoguard train --serve` (and `make schedule`) serves it on the `retrain_cron` schedule, which needs a
Prefect server (`prefect server start`). Nothing touches the registry before the model is trained and measured, and the
tracking store is checked first, so a failure leaves no half-registered model behind.

Data: generated, a labelled file, or the scored-transaction log joined with its labels (`from_log`: "yes" trains
on the log or fails saying why; "auto", the scheduled flow's choice, trains on it when it holds `log_min_frauds`
labelled frauds and otherwise says why it fell back to generated data). With `promotion_requires_shadow` a new
version that passes the offline rule becomes the challenger; each run first settles the challenger before it on
its live-shadow result (training/live.py).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

import registry
from core.settings import Settings
from feedback.dataset import WINDOW_COLUMN, LogDataset, labelled_log
from feedback.errors import NotEnoughLabelsError
from schemas.drift import DriftReference, reference_from
from schemas.features import build_features, feature_names
from training import data, model, report
from training.data import Windows
from training.live import compare_live
from training.model import SearchResult
from training.promotion import PromotionDecision, decide, live_gate
from training.quality import Metrics, ReviewBand, choose_review_threshold, choose_threshold, measure, review_band

logger = logging.getLogger(__name__)

# Frames and matrices pass between tasks in memory: no caching (it would hash them) and no persistence.
_TASK: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
# Trials of the search that trains the other feature set for the model card's comparison.
COMPARE_TRIALS = 4
# Rows of the train window the drift reference is measured on (a seeded sample beyond this: deciles need no more).
REFERENCE_ROWS = 200_000
FROM_LOG_CHOICES = ("no", "yes", "auto")


@dataclass(frozen=True)
class WindowScores:
    """Labels, scores and amounts of one window."""

    labels: np.ndarray
    scores: np.ndarray
    amounts: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """The threshold and the metrics of the challenger, and of the other feature set when compared."""

    threshold: float
    validation: Metrics
    test: Metrics
    validation_scored: WindowScores
    test_scored: WindowScores
    other_feature_set: tuple[str, Metrics] | None
    # The review band the review policy chose on validation, and what it does on test (None: no band).
    review_validation: ReviewBand | None = None
    review_test: ReviewBand | None = None

    @property
    def review_threshold(self) -> float | None:
        return None if self.review_validation is None else self.review_validation.review_threshold


@dataclass(frozen=True)
class RetrainResult:
    """What one run of the flow did."""

    model_name: str
    version: str
    run_id: str
    promoted: bool
    reason: str
    champion: str | None
    feature_set: str
    data_source: str
    windows: list[str]
    evaluation: Evaluation
    trials: int
    training_seconds: float
    challenger: str | None = None  # the challenger alias after the run
    settled: str | None = None  # what the live gate did with the challenger found at the start, if any


@task(name="load", **_TASK)
def load(csv: str | None, settings: Settings) -> tuple[pl.DataFrame, str]:
    """The labelled PaySim frame in step order, and where it came from: a data file when given, else generated."""
    if csv:
        return data.labelled_file(Path(csv), settings.max_skipped_rows)
    rows, steps, seed, repeat = (
        settings.train_rows,
        settings.train_steps,
        settings.train_seed,
        settings.train_repeat_clients,
    )
    frame = data.generated(rows, steps, seed, repeat_clients=repeat)
    data.check_labelled(frame)
    return frame, f"generated: ~{rows:,} rows, {steps} steps, seed {seed}{', repeat clients' if repeat else ''}"


@task(name="load-log", **_TASK)
def load_log(settings: Settings, feature_set: str, required: bool) -> tuple[LogDataset | None, str]:
    """The log joined with its labels when it holds `log_min_frauds` labelled frauds, else None and why not
    (or, when `required`, NotEnoughLabelsError saying why)."""
    found = labelled_log(settings, feature_set)
    if found.labelled_fraud >= settings.log_min_frauds:
        data.check_labelled(found.frame, "the scored-transaction log")
        logger.info("%s", found.describe())
        return found, found.describe()
    why = (
        f"the scored-transaction log in {settings.feedback_dir} holds {found.labelled_fraud} labelled fraud(s) "
        f"older than the label delay ({settings.label_delay_s:g} s; {found.rows_logged:,} rows logged, "
        f"{found.rows_too_young:,} younger); training on it needs {settings.log_min_frauds} "
        "(MOMOGUARD_LOG_MIN_FRAUDS)"
    )
    if required:
        raise NotEnoughLabelsError(why)
    logger.warning("%s: training on generated data instead", why)
    return None, why


@task(name="features", **_TASK)
def features(frame: pl.DataFrame, feature_set: str, stored: np.ndarray | None = None) -> np.ndarray:
    """The feature matrix of every row: as the scorer scored it when the log holds it, else built."""
    return stored if stored is not None else build_features(frame, feature_set)


@task(name="split", **_TASK)
def split(frame: pl.DataFrame, validation_fraction: float, test_fraction: float, from_log: bool = False) -> Windows:
    """Train, validation and test windows cut on step (on scoring time, in seconds, for the log)."""
    if from_log:
        return data.split_by_step(frame, validation_fraction, test_fraction, WINDOW_COLUMN, "seconds")
    return data.split_by_step(frame, validation_fraction, test_fraction)


@task(name="tune-and-train", **_TASK)
def tune_and_train(
    x: np.ndarray, labels: np.ndarray, windows: Windows, feature_set: str, settings: Settings
) -> SearchResult:
    """The hyperparameter search; its best booster is the challenger."""
    train, validation = _samples(x, labels, windows, settings)
    return model.search(
        train,
        validation,
        feature_names(feature_set),
        trials=settings.tuning_trials,
        time_budget_s=settings.tuning_time_budget_s,
        num_threads=settings.train_threads,
        seed=settings.train_seed,
    )


def _samples(
    x: np.ndarray, labels: np.ndarray, windows: Windows, settings: Settings
) -> tuple[model.Sample, model.Sample]:
    rows, weight = data.thin_genuine(windows.train.mask, labels, settings.train_genuine_fraction, settings.train_seed)
    validation = windows.validation.mask
    return model.Sample(x[rows], labels[rows], weight), model.Sample(x[validation], labels[validation])


def compared_feature_set(feature_set: str) -> str:
    """The feature set a model card compares with: account state against the stateless features it adds to,
    pre- against post-settlement."""
    if feature_set == "account_state":
        return "pre_settlement"
    return "post_settlement" if feature_set == "pre_settlement" else "pre_settlement"


@task(name="evaluate-candidate", **_TASK)
def evaluate_candidate(
    frame: pl.DataFrame,
    x: np.ndarray,
    windows: Windows,
    search: SearchResult,
    feature_set: str,
    settings: Settings,
) -> Evaluation:
    """Pick the threshold on validation and measure on test; train the other feature set to compare."""
    evaluation = _score_windows(search.booster, frame, x, windows, settings)
    other = None
    if settings.compare_feature_sets:
        other_set = compared_feature_set(feature_set)
        x_other = build_features(frame, other_set)
        # A short search of its own: the challenger's best parameters need not suit other features.
        compared = model.search(
            *_samples(x_other, frame["isFraud"].to_numpy(), windows, settings),
            feature_names(other_set),
            trials=min(COMPARE_TRIALS, settings.tuning_trials),
            time_budget_s=settings.tuning_time_budget_s / 4,
            num_threads=settings.train_threads,
            seed=settings.train_seed,
        )
        other = (other_set, _score_windows(compared.booster, frame, x_other, windows, settings).test)
        logger.info("other feature set %s: test AUPRC %.5f", other_set, other[1].auprc)
    test = evaluation.test
    logger.info(
        "test window: AUPRC %.5f, precision %.4f, recall %.4f at threshold %.4f",
        test.auprc,
        test.precision,
        test.recall,
        test.threshold,
    )
    return Evaluation(
        evaluation.threshold,
        evaluation.validation,
        test,
        evaluation.validation_scored,
        evaluation.test_scored,
        other,
        evaluation.review_validation,
        evaluation.review_test,
    )


def _score_windows(
    booster: Any, frame: pl.DataFrame, x: np.ndarray, windows: Windows, settings: Settings
) -> Evaluation:
    labels = frame["isFraud"].to_numpy()
    amounts = frame["amount"].to_numpy()

    def window(mask: np.ndarray) -> WindowScores:
        return WindowScores(labels[mask], np.asarray(booster.predict(x[mask]), dtype=np.float64), amounts[mask])

    val, test = window(windows.validation.mask), window(windows.test.mask)
    threshold = choose_threshold(val.labels, val.scores, settings.threshold_policy, settings.threshold_target)
    review = choose_review_threshold(val.labels, val.scores, threshold, settings.review_policy, settings.review_target)
    return Evaluation(
        threshold,
        measure(val.labels, val.scores, val.amounts, threshold),
        measure(test.labels, test.scores, test.amounts, threshold),
        val,
        test,
        None,
        None if review is None else review_band(val.labels, val.scores, threshold, review),
        None if review is None else review_band(test.labels, test.scores, threshold, review),
    )


@task(name="register", **_TASK)
def register(
    x: np.ndarray,
    windows: Windows,
    search: SearchResult,
    evaluation: Evaluation,
    feature_set: str,
    data_source: str,
    settings: Settings,
) -> registry.Registration:
    """Write the report, log the run and the model, register it as a candidate version."""
    facts = report.CardFacts(
        model_name=settings.model_name,
        feature_set=feature_set,
        feature_names=feature_names(feature_set),
        data_source=data_source,
        windows=[w.describe() for w in windows.all()],
        threshold_policy=settings.threshold_policy,
        threshold_target=settings.threshold_target,
        review_policy=settings.review_policy,
        review_target=settings.review_target,
        review=evaluation.review_test,
        params=search.best.params,
        best_iteration=search.best.best_iteration,
        trials=len(search.trials),
        validation_auprc=search.best.validation_auprc,
        training_seconds=search.seconds,
        genuine_fraction=settings.train_genuine_fraction,
        test=evaluation.test,
        other_feature_set=evaluation.other_feature_set,
    )
    metrics: dict[str, float] = {f"test_{k}": float(v) for k, v in evaluation.test.headline().items()}
    metrics |= {f"validation_{k}": float(v) for k, v in evaluation.validation.headline().items()}
    metrics |= {"search_trials": float(len(search.trials)), "training_seconds": search.seconds}
    if evaluation.review_test is not None:
        band = evaluation.review_test
        metrics |= {"test_review_rate": band.review_rate, "test_recall_with_review": band.recall_with_review}
    if evaluation.other_feature_set is not None:
        name, other = evaluation.other_feature_set
        metrics |= {f"compare_{name}_test_auprc": other.auprc, f"compare_{name}_test_f1": other.f1}
    val, test = evaluation.validation_scored, evaluation.test_scored
    reference = drift_reference(x, windows, search.booster, feature_set, settings.train_seed)
    with tempfile.TemporaryDirectory(prefix="momoguard-report-") as tmp:
        artifacts = report.write_all(
            Path(tmp),
            booster=search.booster,
            validation=(val.labels, val.scores),
            test=(test.labels, test.scores),
            facts=facts,
        )
        return registry.register(
            settings,
            booster=search.booster,
            feature_set=feature_set,
            threshold=evaluation.threshold,
            review_threshold=evaluation.review_threshold,
            params={**search.best.params, "best_iteration": search.best.best_iteration},
            metrics=metrics,
            example=x[windows.test.mask][:5],
            artifacts=artifacts,
            tags={"momoguard.data_source": data_source, "momoguard.test_window": windows.test.describe()},
            drift_reference=reference,
        )


def drift_reference(x: np.ndarray, windows: Windows, booster: Any, feature_set: str, seed: int) -> DriftReference:
    """Each feature's and the score's histogram over the train window (every row, genuine ones not thinned),
    stored with the version for the scorer's PSI."""
    rows = np.flatnonzero(windows.train.mask)
    if len(rows) > REFERENCE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, REFERENCE_ROWS, replace=False))
    sample = x[rows]
    return reference_from(sample, feature_names(feature_set), np.asarray(booster.predict(sample), dtype=np.float64))


@task(name="promote", **_TASK)
def promote(
    frame: pl.DataFrame, windows: Windows, evaluation: Evaluation, version: str, settings: Settings
) -> PromotionDecision:
    """Measure the champion on the challenger's test window and apply the promotion rule."""
    current = registry.champion_version(settings)
    champion: Metrics | None = None
    if current is not None:
        loaded = registry.load_version(settings, current)
        test_frame = frame.filter(pl.Series(windows.test.mask))
        champion = measure(
            test_frame["isFraud"].to_numpy(),
            loaded.score(test_frame),
            test_frame["amount"].to_numpy(),
            loaded.threshold,
        )
        registry.set_tags(
            settings,
            version,
            {
                "momoguard.champion_test_auprc": f"{champion.auprc:.6f}",
                "momoguard.champion_test_fraud_amount_recall": f"{champion.fraud_amount_recall:.6f}",
            },
        )
    decision = decide(
        evaluation.test,
        champion,
        auprc_margin=settings.promotion_auprc_margin,
        amount_recall_margin=settings.promotion_amount_recall_margin,
        auprc_floor=settings.promotion_auprc_floor,
        champion_version=current,
    )
    if decision.promote and current is not None and settings.promotion_requires_shadow:
        reason = f"{decision.reason}; shadowing the champion before promotion (MOMOGUARD_PROMOTION_REQUIRES_SHADOW)"
        registry.make_challenger(settings, version, reason)
        return PromotionDecision(False, reason)
    if decision.promote:
        registry.make_champion(settings, version, decision.reason)
    else:
        registry.set_tags(settings, version, {registry.TAG_STATUS: "rejected", registry.TAG_REASON: decision.reason})
        logger.warning("%s version %s rejected: %s", settings.model_name, version, decision.reason)
    return decision


@task(name="settle-challenger", **_TASK)
def settle_challenger(settings: Settings) -> str | None:
    """Promote or reject the challenger on its live-shadow result, or leave it shadowing; says what it did."""
    current = registry.challenger_version(settings)
    if current is None:
        return None
    live = compare_live(settings, current)
    verdict = live_gate(settings, live)
    if verdict.outcome == "promote":
        registry.make_champion(settings, current, verdict.reason)
    elif verdict.outcome == "reject":
        registry.clear_challenger(settings, status="rejected", reason=verdict.reason)
    said = f"challenger v{current}: {verdict.outcome}: {verdict.reason}"
    logger.info("%s", said)
    return said


@flow(name="retrain")
def retrain(
    csv: str | None = None,
    rows: int | None = None,
    steps: int | None = None,
    seed: int | None = None,
    feature_set: str | None = None,
    settings: Settings | None = None,
    from_log: str = "no",
) -> RetrainResult:
    """Train a challenger on fresh data (or the log), register it and promote it if it holds up against the
    champion (or, with the live-shadow gate on, make it the challenger)."""
    settings = settings or Settings()
    overrides = {"train_rows": rows, "train_steps": steps, "train_seed": seed, "feature_set": feature_set}
    if any(v is not None for v in overrides.values()):
        settings = Settings(**{**settings.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})
    if from_log not in FROM_LOG_CHOICES:
        raise ValueError(f"from_log must be one of {', '.join(FROM_LOG_CHOICES)}, got {from_log!r}")
    chosen = settings.feature_set
    registry.check_reachable(settings)
    started = time.perf_counter()
    settled = settle_challenger(settings) if settings.promotion_requires_shadow else None
    logged, why = load_log(settings, chosen, from_log == "yes") if from_log != "no" and not csv else (None, "")
    if logged is not None:
        frame, source = logged.frame, why
    else:
        frame, source = load(csv, settings)
        if why:
            source += f" (not the log: {why})"
    x = features(frame, chosen, logged.features if logged is not None else None)
    windows = split(frame, settings.validation_fraction, settings.test_fraction, logged is not None)
    search = tune_and_train(x, frame["isFraud"].to_numpy(), windows, chosen, settings)
    evaluation = evaluate_candidate(frame, x, windows, search, chosen, settings)
    registration = register(x, windows, search, evaluation, chosen, source, settings)
    decision = promote(frame, windows, evaluation, registration.version, settings)
    logger.info("retrain done in %.1fs", time.perf_counter() - started)
    return RetrainResult(
        model_name=settings.model_name,
        version=registration.version,
        run_id=registration.run_id,
        promoted=decision.promote,
        reason=decision.reason,
        champion=registry.champion_version(settings),
        feature_set=chosen,
        data_source=source,
        windows=[w.describe() for w in windows.all()],
        evaluation=evaluation,
        trials=len(search.trials),
        training_seconds=search.seconds,
        challenger=registry.challenger_version(settings),
        settled=settled,
    )
