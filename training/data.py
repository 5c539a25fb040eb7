"""Training data: a PaySim frame from the generator or a CSV, checked, and cut into time windows by step."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from schemas.transaction import PAYSIM_COLUMNS
from training.errors import DataError, NoFraudError

logger = logging.getLogger(__name__)

# Size of the Kaggle month, which the generator reproduces at scale 1.0 over 743 steps.
KAGGLE_ROWS = 6_362_620
KAGGLE_STEPS = 743


def generated(rows: int, steps: int = KAGGLE_STEPS, seed: int = 0) -> pl.DataFrame:
    """About `rows` generated PaySim rows over `steps` hours (the generator's volume is random)."""
    from replay.generator import generate

    if rows < 1 or steps < 1:
        raise DataError(f"need rows >= 1 and steps >= 1, got rows={rows} steps={steps}")
    frame = generate(steps=steps, scale=scale_for(rows, steps), seed=seed)
    logger.info("generated %d rows over %d steps (seed %d)", frame.height, steps, seed)
    return frame


def scale_for(rows: int, steps: int) -> float:
    """The generator scale that gives about `rows` rows over the first `steps` steps of the month."""
    from replay.generator import expected_rows

    per_unit = expected_rows(steps=steps, scale=1.0)
    if per_unit <= 0:
        raise DataError(f"the generator makes no rows over {steps} steps")
    return rows / per_unit


def from_csv(path: Path) -> pl.DataFrame:
    """A labelled PaySim CSV (the Kaggle header) as a PaySim frame."""
    from replay.paysim import load_paysim

    try:
        frame = load_paysim(path)
    except (pl.exceptions.PolarsError, ValueError) as error:
        raise DataError(f"cannot read {path} as PaySim CSV: {str(error).splitlines()[0]}") from error
    logger.info("read %d rows from %s", frame.height, path)
    return frame


def check_labelled(frame: pl.DataFrame, what: str = "data") -> None:
    """Fail with a one-line DataError unless the frame has the PaySim columns, rows and labels."""
    missing = [c for c in PAYSIM_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks column(s): {', '.join(missing)}")
    if frame.height == 0:
        raise DataError(f"{what} has no rows")
    if frame["isFraud"].null_count():
        raise DataError(f"{what} has {frame['isFraud'].null_count()} unlabelled row(s) (isFraud empty)")


@dataclass(frozen=True)
class Window:
    """One time window of the data: a boolean row mask and the steps it covers."""

    name: str
    mask: np.ndarray
    first_step: int
    last_step: int

    @property
    def rows(self) -> int:
        return int(self.mask.sum())

    def describe(self) -> str:
        return f"{self.name}: steps {self.first_step}-{self.last_step}, {self.rows:,} rows"


@dataclass(frozen=True)
class Windows:
    """Train, validation and test windows, in that order in time."""

    train: Window
    validation: Window
    test: Window

    def all(self) -> tuple[Window, Window, Window]:
        return (self.train, self.validation, self.test)


def split_by_step(frame: pl.DataFrame, validation_fraction: float, test_fraction: float) -> Windows:
    """Cut on `step`, never at random: the last steps are the test, the ones before them the validation.

    Fractions count distinct steps present in the data (not rows), so the test window is a span of
    time the model has never seen, as it would be in production.
    """
    check_labelled(frame)
    if not (0 < validation_fraction < 1 and 0 < test_fraction < 1 and validation_fraction + test_fraction < 1):
        raise DataError(
            f"bad window fractions: validation={validation_fraction} test={test_fraction} (each in (0, 1), sum < 1)"
        )
    steps = np.sort(frame["step"].unique().to_numpy())
    n_test = max(1, math.ceil(len(steps) * test_fraction))
    n_validation = max(1, math.ceil(len(steps) * validation_fraction))
    if len(steps) < n_test + n_validation + 1:
        raise DataError(f"need at least 3 distinct steps to cut train/validation/test windows, got {len(steps)}")
    test_start = steps[-n_test]
    validation_start = steps[-(n_test + n_validation)]
    step = frame["step"].to_numpy()
    labels = frame["isFraud"].to_numpy()
    bounds = {
        "train": (steps[0], steps[-(n_test + n_validation) - 1]),
        "validation": (validation_start, steps[-n_test - 1]),
        "test": (test_start, steps[-1]),
    }
    made: dict[str, Window] = {}
    for name, (first, last) in bounds.items():
        mask = (step >= first) & (step <= last)
        frauds = int(labels[mask].sum())
        if frauds == 0 or frauds == int(mask.sum()):
            kind = "fraud" if frauds == 0 else "genuine"
            raise NoFraudError(f"the {name} window (steps {first}-{last}, {int(mask.sum()):,} rows) has no {kind} rows")
        made[name] = Window(name, mask, int(first), int(last))
    windows = Windows(made["train"], made["validation"], made["test"])
    for window in windows.all():
        logger.info("window %s", window.describe())
    return windows


def thin_genuine(mask: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the window to train on: every fraud and a random `fraction` of the genuine rows.

    Returns the row indices (in order) and their weights: 1 for fraud, 1/fraction for genuine, so the
    weighted mix is the window's own. Training on a quarter of the genuine rows costs a quarter of the time,
    and the genuine rows are the ones a fraud model has plenty of.
    """
    if not 0 < fraction <= 1:
        raise DataError(f"genuine fraction must be in (0, 1], got {fraction}")
    rows = np.flatnonzero(mask)
    genuine = labels[rows] == 0
    keep = ~genuine | (np.random.default_rng(seed).random(len(rows)) < fraction)
    kept = rows[keep]
    weight = np.where(genuine[keep], 1.0 / fraction, 1.0)
    logger.info("training on %d of %d rows (all fraud, %.0f%% of genuine)", len(kept), len(rows), fraction * 100)
    return kept, weight
