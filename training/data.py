"""Training data: a PaySim frame from the generator or a data file, checked, and cut into time windows by step."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from core.errors import DataError
from paysim.kaggle import KAGGLE_STEPS
from paysim.reader import ReadReport, check_skipped, load_paysim
from schemas.transaction import PAYSIM_COLUMNS
from training.errors import NoFraudError

logger = logging.getLogger(__name__)


def generated(rows: int, steps: int = KAGGLE_STEPS, seed: int = 0, repeat_clients: bool = False) -> pl.DataFrame:
    """About `rows` generated PaySim rows over `steps` hours (the generator's volume is random); `repeat_clients`:
    the generator's repeat-client mode."""
    from paysim.generator import generate

    if rows < 1 or steps < 1:
        raise DataError(f"need rows >= 1 and steps >= 1, got rows={rows} steps={steps}")
    frame = generate(steps=steps, scale=scale_for(rows, steps), seed=seed, repeat_clients=repeat_clients)
    logger.info("generated %d rows over %d steps (seed %d)", frame.height, steps, seed)
    return frame


def scale_for(rows: int, steps: int) -> float:
    """The generator scale that gives about `rows` rows over the first `steps` steps of the month."""
    from paysim.generator import expected_rows

    per_unit = expected_rows(steps=steps, scale=1.0)
    if per_unit <= 0:
        raise DataError(f"the generator makes no rows over {steps} steps")
    return rows / per_unit


def from_file(path: Path) -> tuple[pl.DataFrame, ReadReport]:
    """A labelled PaySim file (CSV, gzipped CSV or Parquet) in step order, and what the read skipped."""
    report = ReadReport(Path(path))
    try:
        frame = load_paysim(path, report=report, by_step=True)
    except (pl.exceptions.PolarsError, ValueError) as error:
        raise DataError(f"cannot read {path} as PaySim data: {str(error).splitlines()[0]}") from error
    logger.info("%s", report.summary())
    return frame, report


def labelled_file(path: Path, max_skipped: int) -> tuple[pl.DataFrame, str]:
    """A labelled PaySim file to train on, in step order, and a line saying what was read.

    One-line DataErrors for a file that is missing, not PaySim data, unlabelled, or holds more than
    `max_skipped` malformed rows.
    """
    frame, report = from_file(path)
    check_skipped([report], max_skipped)
    check_labelled(frame, str(path))
    return frame, f"file {path} ({report.rows:,} rows read, {report.malformed:,} skipped as malformed)"


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
    unit: str = "steps"  # what the window's bounds count: PaySim steps, or seconds of the scored-transaction log

    @property
    def rows(self) -> int:
        return int(self.mask.sum())

    def describe(self) -> str:
        return f"{self.name}: {self.unit} {self.first_step}-{self.last_step}, {self.rows:,} rows"


@dataclass(frozen=True)
class Windows:
    """Train, validation and test windows, in that order in time."""

    train: Window
    validation: Window
    test: Window

    def all(self) -> tuple[Window, Window, Window]:
        return (self.train, self.validation, self.test)


def split_by_step(
    frame: pl.DataFrame, validation_fraction: float, test_fraction: float, column: str = "step", unit: str = "steps"
) -> Windows:
    """Cut on `step` (or another time `column`), never at random: the last steps are the test, the steps
    before them the validation. The scored-transaction log is cut on its scoring time in seconds the same way.

    The test window is the shortest run of last steps that holds `test_fraction` of the rows, and the
    validation window the run of steps before it that holds `validation_fraction`; whole steps only, so
    each window is a span of time the earlier windows never saw. Fractions count rows, not steps, because
    PaySim's volume is front-loaded: the last 20 % of the steps hold about 1 % of the rows at twenty
    times the month's fraud rate, too thin to choose a threshold on or to measure a false-block rate.
    """
    check_labelled(frame)
    if not (0 < validation_fraction < 1 and 0 < test_fraction < 1 and validation_fraction + test_fraction < 1):
        raise DataError(
            f"bad window fractions: validation={validation_fraction} test={test_fraction} (each in (0, 1), sum < 1)"
        )
    steps, counts = np.unique(frame[column].to_numpy(), return_counts=True)
    if len(steps) < 3:
        raise DataError(f"need at least 3 distinct {unit} to cut train/validation/test windows, got {len(steps)}")
    # rows_after[i]: rows in steps[i:]; a window starts at the latest step that gives it enough rows.
    rows_after = np.cumsum(counts[::-1])[::-1]
    n_test = int(np.sum(rows_after < test_fraction * frame.height)) + 1
    n_test = min(n_test, len(steps) - 2)
    before_test = rows_after - rows_after[-n_test]
    n_both = int(np.sum(before_test < validation_fraction * frame.height)) + 1
    n_both = min(max(n_both, n_test + 1), len(steps) - 1)
    test_start = steps[-n_test]
    validation_start = steps[-n_both]
    step = frame[column].to_numpy()
    labels = frame["isFraud"].to_numpy()
    bounds = {
        "train": (steps[0], steps[-n_both - 1]),
        "validation": (validation_start, steps[-n_test - 1]),
        "test": (test_start, steps[-1]),
    }
    made: dict[str, Window] = {}
    for name, (first, last) in bounds.items():
        mask = (step >= first) & (step <= last)
        frauds = int(labels[mask].sum())
        if frauds == 0 or frauds == int(mask.sum()):
            kind = "fraud" if frauds == 0 else "genuine"
            raise NoFraudError(
                f"the {name} window ({unit} {first}-{last}, {int(mask.sum()):,} rows) has no {kind} rows"
            )
        made[name] = Window(name, mask, int(first), int(last), unit)
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
