"""Training reads a DataFrame, the scorer plain columns: the features must be identical, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.account_state import offline_features
from schemas.features import FEATURE_SETS, build_features, uses_account_state
from schemas.frame import columns_from_transactions, frame_from_transactions
from schemas.transaction import Transaction
from tests.support.models import sample_frame


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_dataframe_and_columns_give_the_same_features(feature_set: str) -> None:
    frame = sample_frame()
    transactions = [Transaction.model_validate(row) for row in frame.to_dicts()]
    from_frame = build_features(frame, feature_set)
    # The scorer's columns bring the account state along (its tables' rows): here, the frame's own.
    state = offline_features(frame) if uses_account_state(feature_set) else None
    from_columns = build_features(columns_from_transactions(transactions), feature_set, state=state)
    assert from_frame.shape == (frame.height, from_frame.shape[1])
    assert np.array_equal(from_frame, from_columns)
    assert np.array_equal(from_frame, build_features(frame_from_transactions(transactions), feature_set))


def test_an_empty_batch_has_no_rows() -> None:
    assert build_features(columns_from_transactions([])).shape[0] == 0
