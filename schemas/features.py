"""The one feature function shared by training and scoring: a PaySim frame in, a float matrix out.

Three feature sets exist:

- ``pre_settlement`` (the default) uses only what is known *before* a transaction settles: the type, the
  amount, the two old balances, the hour of day and flags derived from them (moves the whole balance,
  exceeds the balance, empty accounts, merchant destination). A scorer that blocks in real time can use it.
- ``post_settlement`` (opt-in) adds the new balances and PaySim's balance-error features. They make PaySim
  easy but are only known after settlement, so a model using them cannot block a transaction in flight.
- ``account_state`` (opt-in) adds account memory to ``pre_settlement``: what the originator sent and received
  before this transaction (schemas/account_state.py). Offline it is computed from the whole frame, point in time;
  a scorer serves it only from its account tables, passed in as `state`.

Apart from the account state, every feature is a function of its own row only (no batch statistics), so a row
gets the same features alone or in a batch of a million. The work is done on whole columns with numpy, which
keeps a call on a small micro-batch in the tens of microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import polars as pl

from schemas.account_state import STATE_COLUMNS, STATE_FEATURE_NAMES, offline_features
from schemas.transaction import TX_TYPES

FeatureSet = Literal["pre_settlement", "post_settlement", "account_state"]
FEATURE_SETS: tuple[FeatureSet, ...] = get_args(FeatureSet)
DEFAULT_FEATURE_SET: FeatureSet = "pre_settlement"


# Two amounts closer than a cent are the same amount (PaySim logs money with two decimals).
_CENT = 0.01

_PRE_SETTLEMENT_NAMES: tuple[str, ...] = (
    *(f"type_{t.lower()}" for t in TX_TYPES),
    "amount",
    "old_balance_orig",
    "old_balance_dest",
    "hour_of_day",
    "amount_over_balance_orig",
    "balance_left_orig",
    "moves_whole_balance",
    "exceeds_balance_orig",
    "orig_balance_empty",
    "dest_balance_empty",
    "dest_is_merchant",
)
_POST_SETTLEMENT_NAMES: tuple[str, ...] = (
    *_PRE_SETTLEMENT_NAMES,
    "new_balance_orig",
    "new_balance_dest",
    "balance_error_orig",
    "balance_error_dest",
    "dest_zero_to_zero",
)

# The PaySim columns each feature set reads; nothing else (labels included) can reach the features.
_PRE_SETTLEMENT_COLUMNS: tuple[str, ...] = (
    "step",
    "type",
    "amount",
    "oldbalanceOrg",
    "nameDest",
    "oldbalanceDest",
)
_POST_SETTLEMENT_COLUMNS: tuple[str, ...] = (*_PRE_SETTLEMENT_COLUMNS, "newbalanceOrig", "newbalanceDest")
_ACCOUNT_STATE_NAMES: tuple[str, ...] = (*_PRE_SETTLEMENT_NAMES, *STATE_FEATURE_NAMES)
_ACCOUNT_STATE_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys((*_PRE_SETTLEMENT_COLUMNS, *STATE_COLUMNS)))
_NAMES = {
    "pre_settlement": _PRE_SETTLEMENT_NAMES,
    "post_settlement": _POST_SETTLEMENT_NAMES,
    "account_state": _ACCOUNT_STATE_NAMES,
}
_COLUMNS = {
    "pre_settlement": _PRE_SETTLEMENT_COLUMNS,
    "post_settlement": _POST_SETTLEMENT_COLUMNS,
    "account_state": _ACCOUNT_STATE_COLUMNS,
}


class FeatureError(ValueError):
    """The frame cannot be turned into features (unknown feature set or a missing column)."""


def feature_names(feature_set: str = DEFAULT_FEATURE_SET) -> list[str]:
    """The ordered column names of the matrix that `build_features` returns for this feature set."""
    return list(_NAMES[_checked(feature_set)])


def required_columns(feature_set: str = DEFAULT_FEATURE_SET) -> list[str]:
    """The PaySim columns the feature set reads."""
    return list(_COLUMNS[_checked(feature_set)])


def uses_account_state(feature_set: str) -> bool:
    """Whether a model of this feature set needs the account state (a scorer without account tables cannot
    serve it)."""
    return _checked(feature_set) == "account_state"


Columns = Mapping[str, Sequence[Any] | np.ndarray]


def build_features(
    frame: pl.DataFrame | Columns, feature_set: str = DEFAULT_FEATURE_SET, state: np.ndarray | None = None
) -> np.ndarray:
    """Turn a PaySim frame into a float64 matrix, one row per transaction, columns `feature_names(...)`.

    `frame` is a polars DataFrame (training, offline scoring) or a mapping of column name to values (the scorer's
    micro-batches, where building a DataFrame would cost more than the features). Only reading the columns
    differs between the two; every feature is computed once, by `_assemble`.

    `account_state` features take the account state of each row from `state` (rows x STATE_FEATURE_NAMES, what
    the scorer's tables give); a DataFrame without `state` gets it computed from the frame itself, point in time
    (the rows before each row, in step order, are its history).
    """
    checked = _checked(feature_set)
    post = checked == "post_settlement"
    present = frame.columns if isinstance(frame, pl.DataFrame) else list(frame)
    # With the state brought along, the frame needs only what the row's own features read.
    needed = _PRE_SETTLEMENT_COLUMNS if state is not None and checked == "account_state" else _COLUMNS[checked]
    missing = [c for c in needed if c not in present]
    if missing:
        raise FeatureError(f"frame lacks column(s) {', '.join(missing)} needed by {feature_set} features")
    read = _read_polars if isinstance(frame, pl.DataFrame) else _read_mapping
    x = _assemble(read(frame, post), post)  # type: ignore[arg-type]
    if checked != "account_state":
        return x
    if state is None:
        if not isinstance(frame, pl.DataFrame):
            raise FeatureError("account_state features need the account state of each row (the scorer's tables)")
        state = offline_features(frame)
    if state.shape != (x.shape[0], len(STATE_FEATURE_NAMES)):
        raise FeatureError(f"account state of shape {state.shape} for {x.shape[0]} rows")
    return np.hstack([x, state])


def _assemble(cols: dict[str, np.ndarray], post: bool) -> np.ndarray:
    amount, old_orig, old_dest = cols["amount"], cols["oldbalanceOrg"], cols["oldbalanceDest"]
    hour = np.mod(cols["step"], 24.0)
    has_balance = old_orig > 0
    ratio = np.divide(amount, old_orig, out=np.full_like(amount, -1.0), where=has_balance)
    # Flags stay boolean here: the matrix is made float64 in one go at the end (True is 1.0, False 0.0).
    columns: list[np.ndarray] = [cols[f"type={t}"] for t in TX_TYPES]
    columns += [
        amount,
        old_orig,
        old_dest,
        hour,
        ratio,
        old_orig - amount,
        has_balance & (np.abs(amount - old_orig) <= _CENT),
        amount > old_orig + _CENT,
        old_orig == 0,
        old_dest == 0,
        cols["dest_is_merchant"],
    ]
    if post:
        new_orig, new_dest = cols["newbalanceOrig"], cols["newbalanceDest"]
        columns += [
            new_orig,
            new_dest,
            new_orig + amount - old_orig,
            old_dest + amount - new_dest,
            (old_dest == 0) & (new_dest == 0),
        ]
    if not columns[0].size:
        return np.empty((0, len(columns)), dtype=np.float64)
    # Columns as the rows of one array, then transposed into a row-major copy: a third of np.column_stack's fixed
    # cost on a micro-batch, and the same matrix.
    return np.ascontiguousarray(np.array(columns, dtype=np.float64).T)


_FLOAT_COLUMNS = ("step", "amount", "oldbalanceOrg", "oldbalanceDest")
_POST_FLOAT_COLUMNS = ("newbalanceOrig", "newbalanceDest")


def _read_polars(frame: pl.DataFrame, post: bool) -> dict[str, np.ndarray]:
    cols = {c: _floats(frame, c) for c in (*_FLOAT_COLUMNS, *(_POST_FLOAT_COLUMNS if post else ()))}
    tx_type = frame["type"].cast(pl.Utf8)
    for t in TX_TYPES:
        cols[f"type={t}"] = (tx_type == t).fill_null(False).to_numpy()
    cols["dest_is_merchant"] = _starts_with_m(frame["nameDest"].cast(pl.Utf8))
    return cols


def _read_mapping(frame: Columns, post: bool) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for c in (*_FLOAT_COLUMNS, *(_POST_FLOAT_COLUMNS if post else ())):
        values = np.asarray(frame[c], dtype=np.float64)  # None becomes NaN, as polars' null
        cols[c] = np.nan_to_num(values, nan=0.0) if np.isnan(values).any() else values
    tx_type = np.asarray(frame["type"], dtype=str)
    for t in TX_TYPES:
        cols[f"type={t}"] = tx_type == t
    names = np.asarray(frame["nameDest"], dtype=str)
    cols["dest_is_merchant"] = (names >= "M") & (names < "N")
    return cols


def _floats(frame: pl.DataFrame, column: str) -> np.ndarray:
    # Checking for nulls first saves a fill_null call, which costs more than everything else on a small batch.
    series = frame[column].cast(pl.Float64)
    return (series.fill_null(0.0) if series.null_count() else series).to_numpy()


def _starts_with_m(names: pl.Series) -> np.ndarray:
    # A range comparison does what str.starts_with("M") does, at a quarter of its fixed cost per call.
    merchant = (names >= "M") & (names < "N")
    return (merchant.fill_null(False) if merchant.null_count() else merchant).to_numpy()


def _checked(feature_set: str) -> FeatureSet:
    if feature_set not in FEATURE_SETS:
        raise FeatureError(f"unknown feature set {feature_set!r}; expected one of {', '.join(FEATURE_SETS)}")
    return feature_set
