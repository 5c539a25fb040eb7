"""Reading the log: scored transactions once per tx_id, and each transaction's latest label.

The sink writes at least once, so a transaction scored again after a scorer's crash, or written again after the
sink's, may appear twice: readers keep the first scoring of each tx_id (the one whose verdict was acted on first).
A transaction labelled twice keeps its latest label (an analyst correcting a chargeback's, say).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from feedback.store import LABELS, SCORED, LogStore

# The columns read back as text: dictionary-encoded on the wire and in the files.
_TEXT_COLUMNS = (
    "type",
    "model_name",
    "model_version",
    "feature_set",
    "decision",
    "shadow_model_version",
    "shadow_decision",
)


def scan_scored(root: Path) -> pl.LazyFrame | None:
    """Every scored row of the log, duplicates included (None when the log has none)."""
    parts = LogStore(root).parts(SCORED)
    if not parts:
        return None
    scan = pl.scan_parquet(parts, hive_partitioning=False)
    return scan.with_columns(pl.col(c).cast(pl.Utf8) for c in _TEXT_COLUMNS)


def read_scored(root: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """The log's scored transactions, one row per tx_id (its first scoring), oldest first."""
    scan = scan_scored(root)
    if scan is None:
        return pl.DataFrame()
    if columns is not None:
        scan = scan.select(list(dict.fromkeys(["tx_id", "scored_at", *columns])))
    return scan.sort("scored_at", maintain_order=True).unique("tx_id", keep="first", maintain_order=True).collect()


def read_labels(root: Path) -> pl.DataFrame:
    """Each labelled tx_id's latest label: tx_id, is_fraud, source, labelled_at, note."""
    parts = LogStore(root).parts(LABELS)
    if not parts:
        return pl.DataFrame(schema={"tx_id": pl.Utf8, "is_fraud": pl.Boolean, "source": pl.Utf8,
                                    "labelled_at": pl.Datetime("us", "UTC"), "note": pl.Utf8})  # fmt: skip
    return (
        pl.scan_parquet(parts, hive_partitioning=False)
        .sort("labelled_at", maintain_order=True)
        .unique("tx_id", keep="last", maintain_order=True)
        .collect()
    )


def logged_ids(root: Path, tx_ids: list[str]) -> set[str]:
    """Which of these tx_ids the log holds."""
    scan = scan_scored(root)
    if scan is None or not tx_ids:
        return set()
    found = scan.select("tx_id").filter(pl.col("tx_id").is_in(tx_ids)).unique().collect()
    return set(found["tx_id"].to_list())
