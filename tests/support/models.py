"""Register small real LightGBM models (trained on the real Kaggle sample rows) in a real MLflow store."""

from __future__ import annotations

import csv
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl

import registry
from core.settings import Settings
from paysim.kaggle import SAMPLES_DIR
from schemas.drift import reference_from
from schemas.features import build_features, feature_names
from schemas.frame import FRAME_SCHEMA
from schemas.transaction import PAYSIM_COLUMNS


def sample_frame() -> pl.DataFrame:
    """The two real Kaggle samples as one PaySim frame with tx_ids (s0, s1, ...)."""
    schema = {c: FRAME_SCHEMA[c] for c in PAYSIM_COLUMNS}
    frames = [pl.read_csv(path, schema=schema) for path in sorted(SAMPLES_DIR.glob("kaggle_*.csv"))]
    frame = pl.concat(frames)
    return frame.with_columns(tx_id=pl.format("s{}", pl.int_range(pl.len()))).select(list(FRAME_SCHEMA))


def sample_rows() -> list[dict[str, object]]:
    """The samples' rows as the JSON a producer sends: numbers as numbers (CSV cells are text)."""
    rows: list[dict[str, object]] = []
    for path in sorted(SAMPLES_DIR.glob("kaggle_*.csv")):
        with path.open(newline="") as handle:
            rows.extend(typed(row) for row in csv.DictReader(handle))
    return rows


_WHOLE = ("step", "isFraud", "isFlaggedFraud")
_TEXT = ("type", "nameOrig", "nameDest")


def typed(row: dict[str, str]) -> dict[str, object]:
    """One Kaggle CSV row with its numbers parsed (Java-style `1.916920493E7` included)."""
    return {k: v if k in _TEXT else int(v) if k in _WHOLE else float(v) for k, v in row.items()}


def train_booster(
    rounds: int = 40,
    seed: int = 0,
    feature_set: str = "pre_settlement",
    frame: pl.DataFrame | None = None,
    y: np.ndarray | None = None,
) -> lgb.Booster:
    """A small model of the sample rows (or of `frame`, labelled `y`, default its isFraud)."""
    frame = sample_frame() if frame is None else frame
    x = build_features(frame, feature_set)
    y = frame["isFraud"].to_numpy() if y is None else y
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "verbose": -1,
        "seed": seed,
        "num_threads": 1,
        "deterministic": True,
    }
    return lgb.train(params, lgb.Dataset(x, y, feature_name=feature_names(feature_set)), num_boost_round=rounds)


def register_model(
    settings: Settings,
    rounds: int,
    threshold: float,
    tmp: Path,
    champion: bool = True,
    review_threshold: float | None = None,
    feature_set: str = "pre_settlement",
    frame: pl.DataFrame | None = None,
    y: np.ndarray | None = None,
) -> str:
    """Train (on the sample rows, or `frame` labelled `y`), register and (optionally) make champion; returns the
    version."""
    booster = train_booster(rounds, feature_set=feature_set, frame=frame, y=y)
    everything = build_features(sample_frame() if frame is None else frame, feature_set)
    x = everything[:5]
    card = tmp / f"card-{rounds}.md"
    card.write_text(f"test model, {rounds} rounds\n")
    version = registry.register(
        settings,
        booster=booster,
        feature_set=feature_set,
        threshold=threshold,
        review_threshold=review_threshold,
        params={"rounds": rounds},
        metrics={"test_auprc": float(np.float64(0.99))},
        example=x,
        artifacts=[card],
        tags={"purpose": "test"},
        # As training stores it: each feature's and the score's histogram over the rows it learnt from.
        drift_reference=reference_from(everything, feature_names(feature_set), booster.predict(everything)),
    ).version
    if champion:
        registry.make_champion(settings, version, "test fixture")
    return version
