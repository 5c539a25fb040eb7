"""Time windows: test after validation after train, every window with fraud, clear errors on bad data."""

from __future__ import annotations

import polars as pl
import pytest

from core.errors import DataError
from training.data import check_labelled, split_by_step
from training.errors import NoFraudError


def test_windows_follow_each_other_in_time(windowed: pl.DataFrame) -> None:
    windows = split_by_step(windowed, validation_fraction=0.15, test_fraction=0.2)
    step = windowed["step"].to_numpy()
    train, validation, test = (step[w.mask] for w in windows.all())
    assert train.max() < validation.min() <= validation.max() < test.min()
    assert windows.train.rows + windows.validation.rows + windows.test.rows == windowed.height
    assert not (windows.train.mask & windows.test.mask).any()
    # Whole steps: the test is the shortest run of last steps with 20 % of the rows, validation 15 % before it.
    n = windowed.height
    assert windows.test.rows >= 0.2 * n > windows.test.rows - int((test == test.min()).sum())
    assert windows.validation.rows >= 0.15 * n > windows.validation.rows - int((validation == validation.min()).sum())
    assert windows.test.last_step == 40 and windows.train.first_step == 1
    for window in windows.all():
        assert windowed["isFraud"].to_numpy()[window.mask].sum() > 0


def test_windows_count_rows_not_steps(windowed: pl.DataFrame) -> None:
    # Front-loaded volume, as in PaySim: steps 1-10 hold most rows, so the late windows span many steps.
    front_loaded = pl.concat([windowed.filter(pl.col("step") <= 10)] * 5 + [windowed.filter(pl.col("step") > 10)])
    windows = split_by_step(front_loaded.sort("step"), 0.15, 0.2)
    assert windows.test.first_step < 33 and windows.validation.first_step < windows.test.first_step
    assert windows.test.rows >= 0.2 * front_loaded.height


def test_a_window_without_fraud_is_a_clear_error(windowed: pl.DataFrame) -> None:
    no_test_fraud = windowed.with_columns(
        isFraud=pl.when(pl.col("step") > 32).then(0).otherwise(pl.col("isFraud")).cast(pl.Int8)
    )
    with pytest.raises(NoFraudError, match=r"test window \(steps 3\d-40.*no fraud rows"):
        split_by_step(no_test_fraud, 0.15, 0.2)


def test_empty_unlabelled_and_short_data_are_clear_errors(windowed: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="no rows"):
        check_labelled(windowed.clear())
    with pytest.raises(DataError, match="lacks column.*isFraud"):
        check_labelled(windowed.drop("isFraud"))
    with pytest.raises(DataError, match="unlabelled"):
        check_labelled(windowed.with_columns(isFraud=pl.lit(None, dtype=pl.Int8)))
    with pytest.raises(DataError, match="at least 3 distinct steps"):
        split_by_step(windowed.filter(pl.col("step") <= 2), 0.15, 0.2)
    with pytest.raises(DataError, match="bad window fractions"):
        split_by_step(windowed, 0.5, 0.6)
