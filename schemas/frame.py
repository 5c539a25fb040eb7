"""Validated transactions as a PaySim frame: the shape the feature function reads, in training and scoring."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from schemas.transaction import Transaction

FRAME_SCHEMA: dict[str, pl.DataType] = {
    "tx_id": pl.Utf8(),
    "step": pl.Int32(),
    "type": pl.Utf8(),
    "amount": pl.Float64(),
    "nameOrig": pl.Utf8(),
    "oldbalanceOrg": pl.Float64(),
    "newbalanceOrig": pl.Float64(),
    "nameDest": pl.Utf8(),
    "oldbalanceDest": pl.Float64(),
    "newbalanceDest": pl.Float64(),
    "isFraud": pl.Int8(),
    "isFlaggedFraud": pl.Int8(),
}


def columns_from_transactions(transactions: Sequence[Transaction]) -> dict[str, list[object]]:
    """The feature columns of these transactions as plain lists: what the scorer hands `build_features`.

    Cheaper than a DataFrame for micro-batches; `build_features` reads both the same way.
    """
    return {
        "step": [t.step for t in transactions],
        "type": [t.type.value for t in transactions],
        "amount": [t.amount for t in transactions],
        "oldbalanceOrg": [t.old_balance_orig for t in transactions],
        "newbalanceOrig": [t.new_balance_orig for t in transactions],
        "nameDest": [t.name_dest for t in transactions],
        "oldbalanceDest": [t.old_balance_dest for t in transactions],
        "newbalanceDest": [t.new_balance_dest for t in transactions],
    }


def frame_from_transactions(transactions: Sequence[Transaction]) -> pl.DataFrame:
    """A PaySim frame (tx_id then the Kaggle columns) holding these transactions, in order."""
    columns: dict[str, list[object]] = {
        "tx_id": [t.tx_id for t in transactions],
        "nameOrig": [t.name_orig for t in transactions],
        "isFraud": [t.is_fraud for t in transactions],
        "isFlaggedFraud": [t.is_flagged_fraud for t in transactions],
        **columns_from_transactions(transactions),
    }
    return pl.DataFrame({c: columns[c] for c in FRAME_SCHEMA}, schema=FRAME_SCHEMA)
