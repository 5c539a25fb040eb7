"""The retrain flow end to end with Prefect's test harness and a real SQLite MLflow store in a tmp dir."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

import registry
from core.settings import Settings
from momoguard.cli import app
from tests.training.conftest import write_paysim_csv
from training.data import split_by_step
from training.flow import retrain
from training.quality import measure

pytestmark = pytest.mark.usefixtures("prefect_harness")


def scrambled_train_labels(frame: pl.DataFrame, last_train_step: int) -> pl.DataFrame:
    """Same rows, but the train window's labels shuffled: a challenger trained on it learns nothing."""
    train = frame.filter(pl.col("step") <= last_train_step)
    shuffled = train.with_columns(pl.col("isFraud").shuffle(seed=7))
    return pl.concat([shuffled, frame.filter(pl.col("step") > last_train_step)])


def cli(settings: Settings, *args: str) -> str:
    env = {"MOMOGUARD_RUN_DIR": str(settings.run_dir), "MOMOGUARD_MLFLOW_TRACKING_URI": ""}
    done = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.output


def test_first_promoted_worse_rejected_rollback_restores(
    settings: Settings, windowed: pl.DataFrame, tmp_path: Path
) -> None:
    good = write_paysim_csv(windowed, tmp_path / "good.csv")

    first = retrain(csv=str(good), settings=settings.model_copy(update={"compare_feature_sets": True}))
    assert first.promoted and first.version == "1", first.reason
    assert "first model" in first.reason and registry.champion_version(settings) == "1"
    champion = registry.load_champion(settings)
    assert (champion.version, champion.feature_set) == ("1", "pre_settlement")
    assert champion.threshold == pytest.approx(first.evaluation.threshold)
    assert champion.feature_names == list(champion.booster.feature_name())
    assert first.evaluation.other_feature_set is not None
    assert first.evaluation.other_feature_set[0] == "post_settlement"
    artifacts = {a.path for a in mlflow.MlflowClient(settings.tracking_uri).list_artifacts(first.run_id, "report")}
    for name in ("pr_curve.png", "threshold_curve.png", "confusion_matrix.json", "feature_importance.png"):
        assert f"report/{name}" in artifacts
    card = Path(mlflow.artifacts.download_artifacts(
        run_id=first.run_id, artifact_path="report/model_card.md", tracking_uri=settings.tracking_uri,
        dst_path=str(tmp_path / "card"),
    )).read_text()  # fmt: skip
    assert "`post_settlement`" in card and "pre_settlement` (this model)" in card and "best_f1" in card
    # The review threshold the default policy (min_recall 0.95) chose on validation travels with the version.
    review = first.evaluation.review_threshold
    assert champion.review_threshold == (None if review is None else pytest.approx(review))
    assert review is None or review < champion.threshold
    assert ("Review threshold: none" in card) if review is None else (f"Review threshold {review:.6f}" in card)

    # The champion's test metrics, recomputed from the registered model, match what the flow reported.
    test = windowed.filter(pl.Series(split_by_step(windowed, 0.15, 0.2).test.mask))
    again = measure(test["isFraud"].to_numpy(), champion.score(test), test["amount"].to_numpy(), champion.threshold)
    assert again.auprc == pytest.approx(first.evaluation.test.auprc)

    worse = write_paysim_csv(scrambled_train_labels(windowed, last_train_step=26), tmp_path / "worse.csv")
    second = retrain(csv=str(worse), settings=settings)
    assert not second.promoted and second.version == "2"
    assert registry.champion_version(settings) == "1"
    tags = registry.get_version(settings, "2").tags
    assert tags[registry.TAG_STATUS] == "rejected"
    assert "below champion v1" in tags[registry.TAG_REASON]

    third = retrain(csv=str(good), settings=settings)
    assert third.promoted and registry.champion_version(settings) == "3", third.reason
    assert registry.get_version(settings, "3").tags[registry.TAG_PREVIOUS] == "1"

    assert registry.rollback(settings) == ("3", "1")
    assert registry.champion_version(settings) == "1"
    assert registry.load_champion(settings).version == "1"

    # The same through the command line.
    assert "version 3 is champion (was 1)" in cli(settings, "models", "promote", "3")
    assert "rolled back from version 3 to 1" in cli(settings, "models", "rollback")
    listing = cli(settings, "models", "list")
    for text in ("champion", "rejected", "rolled_back", "below champion v1"):
        assert text in listing
    rows = {r.version: r for r in registry.list_versions(settings)}
    assert rows["1"].aliases == ["champion"] and rows["2"].status == "rejected"

    out = orjson.loads(cli(settings, "evaluate", str(good), "--model", "3").strip().splitlines()[-1])
    assert set(out) >= {
        "n", "frauds", "auprc", "precision", "recall", "f1", "threshold", "false_block_rate",
        "fraud_amount_recall", "model_version",
    }  # fmt: skip
    assert out["model_version"] == "3" and out["n"] == windowed.height
    assert out["frauds"] == int(windowed["isFraud"].sum())
    v3 = registry.load_version(settings, "3")
    full = measure(windowed["isFraud"].to_numpy(), v3.score(windowed), windowed["amount"].to_numpy(), v3.threshold)
    assert out["auprc"] == pytest.approx(full.auprc) and out["threshold"] == pytest.approx(v3.threshold)
    assert np.isclose(out["fraud_amount_recall"], full.fraud_amount_recall)
