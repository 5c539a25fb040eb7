"""Time windows: test after validation after train, every window with fraud, clear errors on bad data."""

from __future__ import annotations

import polars as pl
import pytest

from training.data import check_labelled, split_by_step
from training.errors import DataError, NoFraudError


def test_windows_follow_each_other_in_time(windowed: pl.DataFrame) -> None:
    windows = split_by_step(windowed, validation_fraction=0.15, test_fraction=0.2)
    step = windowed["step"].to_numpy()
    train, validation, test = (step[w.mask] for w in windows.all())
    assert train.max() < validation.min() <= validation.max() < test.min()
    assert windows.train.rows + windows.validation.rows + windows.test.rows == windowed.height
    assert not (windows.train.mask & windows.test.mask).any()
    # 40 steps: the last 8 (20 %) are the test, the 6 before them (15 %) the validation.
    assert (windows.test.first_step, windows.test.last_step) == (33, 40)
    assert (windows.validation.first_step, windows.validation.last_step) == (27, 32)
    for window in windows.all():
        assert windowed["isFraud"].to_numpy()[window.mask].sum() > 0


def test_a_window_without_fraud_is_a_clear_error(windowed: pl.DataFrame) -> None:
    no_test_fraud = windowed.with_columns(
        isFraud=pl.when(pl.col("step") > 32).then(0).otherwise(pl.col("isFraud")).cast(pl.Int8)
    )
    with pytest.raises(NoFraudError, match=r"test window \(steps 33-40.*no fraud rows"):
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
