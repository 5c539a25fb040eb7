"""The log joined with its labels: what training on real outcomes reads, and what `models compare` judges by.

Training (`labelled_log`): every de-duplicated scored row older than the label delay, its label the latest one
given for its tx_id, or genuine when it has none. Rows younger than the delay are left out whole, labelled or
not: their missing labels may still come (a chargeback takes weeks), and keeping only the labelled young rows
would skew the mix towards fraud. Time order is the scoring time (`second`: seconds since the first row kept).

Shadow comparison (`shadow_rows`): the rows a challenger scored beside the champion, with their labels if any.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from core.settings import Settings
from feedback.log import read_labels, read_scored
from schemas.transaction import PAYSIM_COLUMNS

WINDOW_COLUMN = "second"


@dataclass(frozen=True)
class LogDataset:
    """Labelled rows of the log in scoring order, and how they came to be."""

    frame: pl.DataFrame  # tx_id, the PaySim columns (isFraud the label), `second`, scored_at
    features: np.ndarray | None  # the vectors the scorer scored, when every row has the wanted feature set
    rows_logged: int  # de-duplicated scored rows in the log
    rows_too_young: int
    labelled_fraud: int
    labelled_genuine: int
    unlabelled: int  # counted genuine
    labels_unknown: int  # labels whose tx_id the log does not hold
    label_delay_s: float

    def describe(self) -> str:
        return (
            f"scored-transaction log: {self.frame.height:,} rows ({self.labelled_fraud:,} labelled fraud, "
            f"{self.labelled_genuine:,} labelled genuine, {self.unlabelled:,} unlabelled counted genuine); "
            f"{self.rows_too_young:,} younger than the label delay of {self.label_delay_s:g} s left out; "
            f"{self.labels_unknown:,} label(s) for tx_ids not in the log"
        )


def labelled_log(settings: Settings, feature_set: str, now: datetime | None = None) -> LogDataset:
    """The log joined with its labels, for training on `feature_set` (see the module's docstring)."""
    root = settings.feedback_dir
    scored = read_scored(root)
    labels = read_labels(root)
    if scored.height == 0:
        empty = pl.DataFrame(schema={"tx_id": pl.Utf8})
        return LogDataset(empty, None, 0, 0, 0, 0, 0, labels.height, settings.label_delay_s)
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=settings.label_delay_s)
    old = scored.filter(pl.col("scored_at") <= cutoff)
    joined = old.join(labels.select("tx_id", pl.col("is_fraud").alias("label")), on="tx_id", how="left")
    labelled = joined["label"].is_not_null()
    fraud = int(joined["label"].fill_null(False).sum())
    first = joined["scored_at"].min() if joined.height else None
    frame = joined.with_columns(
        pl.col("label").fill_null(False).cast(pl.Int8).alias("isFraud"),
        pl.lit(0, dtype=pl.Int8).alias("isFlaggedFraud"),
        ((pl.col("scored_at") - pl.lit(first)).dt.total_seconds() if first is not None else pl.lit(0))
        .cast(pl.Int64)
        .alias(WINDOW_COLUMN),
    )
    unknown = labels.height - labels.join(scored.select("tx_id"), on="tx_id", how="semi").height
    return LogDataset(
        frame=frame.select("tx_id", *PAYSIM_COLUMNS, WINDOW_COLUMN, "scored_at"),
        features=_stored_features(frame, feature_set),
        rows_logged=scored.height,
        rows_too_young=scored.height - old.height,
        labelled_fraud=fraud,
        labelled_genuine=int(labelled.sum()) - fraud,
        unlabelled=int((~labelled).sum()),
        labels_unknown=unknown,
        label_delay_s=settings.label_delay_s,
    )


def _stored_features(frame: pl.DataFrame, feature_set: str) -> np.ndarray | None:
    """The scored vectors as one matrix, when every row was scored with `feature_set` (else rebuilt by training)."""
    if frame.height == 0 or frame["feature_set"].n_unique() != 1 or frame["feature_set"][0] != feature_set:
        return None
    lengths = frame["features"].list.len()
    width = int(lengths[0])
    if lengths.n_unique() != 1:
        return None
    return frame["features"].explode().to_numpy().astype(np.float64).reshape(frame.height, width)


def shadow_rows(settings: Settings, challenger: str) -> pl.DataFrame:
    """The rows `challenger` shadowed (first scoring of each tx_id), with `is_fraud` where labelled, oldest first.

    Columns: tx_id, scored_at, amount, model_version (the champion's), decision, score, shadow_score,
    shadow_decision, is_fraud (null when unlabelled).
    """
    root = settings.feedback_dir
    columns = [
        "amount",
        "model_version",
        "decision",
        "score",
        "shadow_model_version",
        "shadow_score",
        "shadow_decision",
    ]
    scored = read_scored(root, columns)
    if scored.height == 0:
        return pl.DataFrame(schema=dict.fromkeys(("tx_id", *columns), pl.Utf8))
    shadowed = scored.filter(pl.col("shadow_model_version") == challenger).drop("shadow_model_version")
    labels = read_labels(root).select("tx_id", "is_fraud")
    return shadowed.join(labels, on="tx_id", how="left").sort("scored_at", maintain_order=True)
