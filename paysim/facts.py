"""Facts about PaySim frames (per-type balance relations, client chains, KS distance) for calibration and reports."""

from __future__ import annotations

import numpy as np
import polars as pl

# PaySim logs money with two decimals: closer than a cent is the same amount.
CENT = 0.01


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    if a.size == 0 or b.size == 0:
        return float("nan")
    a, b = np.sort(a), np.sort(b)
    values = np.concatenate([a, b])
    gap = np.searchsorted(a, values, side="right") / a.size - np.searchsorted(b, values, side="right") / b.size
    return float(np.abs(gap).max())


def chain_runs(frame: pl.DataFrame) -> pl.DataFrame:
    """Genuine rows in file order cut into client chains, one row per chain: type, length, first balance.

    PaySim logs a client's repeated actions back to back, each row starting from the balance the previous
    one left, under a fresh nameOrig. So a chain is a run of same-type rows where oldbalanceOrg equals the
    previous newbalanceOrig. Two chains can merge when one ends at 0 and the next starts at 0 (rare).
    """
    genuine = frame.filter(pl.col("isFraud") == 0).select("step", "type", "oldbalanceOrg", "newbalanceOrig")
    continues = (
        (pl.col("type") == pl.col("type").shift(1))
        & (pl.col("step") == pl.col("step").shift(1))
        & (pl.col("oldbalanceOrg") == pl.col("newbalanceOrig").shift(1))
    ).fill_null(False)
    return (
        genuine.with_columns(chain=(~continues).cum_sum())
        .group_by("chain", maintain_order=True)
        .agg(pl.col("type").first(), length=pl.len(), first_balance=pl.col("oldbalanceOrg").first())
    )


def type_facts(frame: pl.DataFrame) -> pl.DataFrame:
    """Per type and label: the relations between amount and balances that a fraud model can see."""
    amount, old_orig = pl.col("amount"), pl.col("oldbalanceOrg")
    old_dest, new_dest = pl.col("oldbalanceDest"), pl.col("newbalanceDest")
    return (
        frame.group_by("type", "isFraud")
        .agg(
            rows=pl.len(),
            amount_median=amount.median(),
            orig_zero=(old_orig == 0).mean(),
            moves_whole=((old_orig > 0) & ((amount - old_orig).abs() <= CENT)).mean(),
            exceeds_balance=(amount > old_orig + CENT).mean(),
            orig_median=old_orig.median(),
            dest_zero=(old_dest == 0).mean(),
            dest_zero_to_zero=((old_dest == 0) & (new_dest == 0)).mean(),
            dest_median=old_dest.median(),
            dest_merchant=pl.col("nameDest").str.starts_with("M").mean(),
        )
        .sort("type", "isFraud")
    )


def chain_facts(frame: pl.DataFrame) -> pl.DataFrame:
    """Per type: how many chains are single rows, mean length, and the share of chains starting at 0."""
    return (
        chain_runs(frame)
        .group_by("type")
        .agg(
            chains=pl.len(),
            single=(pl.col("length") == 1).mean(),
            mean_length=pl.col("length").mean(),
            start_zero=(pl.col("first_balance") == 0).mean(),
            start_median=pl.col("first_balance").median(),
        )
        .sort("type")
    )
