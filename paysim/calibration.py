"""The generator's calibration table (paysim/calibration.json), loaded once into numpy arrays."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DataError
from schemas.transaction import TX_TYPES

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Calibration:
    """Every figure the generator draws from; arrays are indexed by type code (position in TX_TYPES)."""

    period: int
    kaggle_steps: int
    genuine_rows: np.ndarray  # (types,) rows of a Kaggle month at scale 1
    step_volume: np.ndarray  # (period,) share of the month's transactions per step
    type_mix: np.ndarray  # (types, 24) share of each type per hour of day
    amount_mean: np.ndarray  # (types, 24) mean amount per hour of day
    amount_cv: np.ndarray  # (types, 24) coefficient of variation per hour of day
    amount_day_factor: np.ndarray  # (types, days) mean amount factor per day
    amount_scale: np.ndarray  # (types,) Kaggle correction of the mean amount
    amount_spread: np.ndarray  # (types,) Kaggle correction of the coefficient of variation
    chain_segments: tuple[np.ndarray, ...]  # per type: (segments, 2) first and last length of each segment
    chain_probabilities: tuple[np.ndarray, ...]  # per type: probability of each segment
    start_zero_share: float
    start_quantiles: np.ndarray  # evenly spaced quantiles of a positive first balance
    uniform_first: np.ndarray  # (types,) bool: a chain's first row picks its destination uniformly
    destination_candidates: int
    account_share: float  # share of clients who join the accounts that receive money
    transfer_limit: float
    flag_drop_limits: float
    aftermath_share: float
    takeovers_per_step: float
    fraud_rows_per_step: float  # Kaggle's fraud rows per step at scale 1
    repeat_share: np.ndarray  # (types,) --repeat-clients: share of chains by a client who acted before (PaySim v2)

    def amount_moments(self, tx_type: int, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and coefficient of variation of one type's amounts at these steps (Kaggle corrections applied)."""
        mean, cv = amount_moments(
            self.amount_mean[tx_type], self.amount_cv[tx_type], self.amount_day_factor[tx_type], step, self.period
        )
        return mean * self.amount_scale[tx_type], cv * self.amount_spread[tx_type]

    def type_weights(self) -> np.ndarray:
        """(types, period) share of each type's month volume falling in each step."""
        steps = np.arange(self.period)
        weights = self.step_volume[None, :] * self.type_mix[:, steps % 24]
        month = weights[:, 1 : self.kaggle_steps + 1].sum(axis=1, keepdims=True)
        return weights / month


# No hour's amounts are more regular than this (a few hours hold a single transaction).
MIN_AMOUNT_CV = 0.05


def amount_moments(
    hour_mean: np.ndarray, hour_cv: np.ndarray, day_factor: np.ndarray, step: np.ndarray, period: int
) -> tuple[np.ndarray, np.ndarray]:
    """The table's mean and coefficient of variation of one type's amounts at these steps.

    Mean: the hour of day's mean times the day's factor (a month longer than the profile repeats it).
    """
    index = np.asarray(step) % period
    hour, day = index % 24, np.minimum(index // 24, day_factor.size - 1)
    return hour_mean[hour] * day_factor[day], np.maximum(hour_cv[hour], MIN_AMOUNT_CV)


@lru_cache(maxsize=4)
def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration:
    """Read and check the table; a missing or inconsistent file is a one-line DataError."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError as error:
        raise DataError(f"no calibration table at {path}; run python -m paysim.calibrate") from error
    except json.JSONDecodeError as error:
        raise DataError(f"calibration table {path} is not JSON: {error.msg} (line {error.lineno})") from error
    try:
        calibration = _build(raw)
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"calibration table {path} is incomplete or malformed: {error!r}") from error
    if calibration.step_volume.size != calibration.period:
        raise DataError(f"calibration table {path}: step_volume has {calibration.step_volume.size} entries")
    return calibration


def _build(raw: dict[str, Any]) -> Calibration:
    amount = raw["amount"]
    destinations, fraud = raw["destinations"], raw["fraud"]
    chains, start = raw["chain_length"], raw["start_balance"]

    def per_type(get: str) -> np.ndarray:
        return np.array([amount[t][get] for t in TX_TYPES], dtype=np.float64)

    return Calibration(
        period=int(raw["period"]),
        kaggle_steps=int(raw["kaggle"]["steps"]),
        genuine_rows=np.array([raw["kaggle"]["genuine_rows"][t] for t in TX_TYPES], dtype=np.float64),
        step_volume=np.array(raw["step_volume"], dtype=np.float64),
        type_mix=np.array([raw["type_mix"][t] for t in TX_TYPES], dtype=np.float64),
        amount_mean=per_type("hour_mean"),
        amount_cv=per_type("hour_cv"),
        amount_day_factor=per_type("day_factor"),
        amount_scale=per_type("kaggle_scale"),
        amount_spread=per_type("kaggle_spread"),
        chain_segments=tuple(np.array(chains[t]["segments"], dtype=np.int64).reshape(-1, 2) for t in TX_TYPES),
        chain_probabilities=tuple(_normalised(chains[t]["probabilities"]) for t in TX_TYPES),
        start_zero_share=float(start["zero_share"]),
        start_quantiles=np.array(start["quantiles"], dtype=np.float64),
        uniform_first=np.array([t in destinations["uniform_first"] for t in TX_TYPES]),
        destination_candidates=int(destinations["candidates"]),
        account_share=float(destinations["account_share"]),
        transfer_limit=float(fraud["transfer_limit"]),
        flag_drop_limits=float(fraud["flag_drop_limits"]),
        aftermath_share=float(fraud["aftermath_share"]),
        takeovers_per_step=float(fraud["takeovers_per_step"]),
        fraud_rows_per_step=float(raw["kaggle"]["fraud_rows"]) / float(raw["kaggle"]["steps"]),
        repeat_share=np.array([raw["repeat_clients"]["share"][t] for t in TX_TYPES], dtype=np.float64),
    )


def _normalised(values: list[float]) -> np.ndarray:
    probabilities = np.array(values, dtype=np.float64)
    return probabilities / probabilities.sum()
