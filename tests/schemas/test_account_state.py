"""Account memory: each feature's rule on rows worked by hand, and the two executions (polars over whole frames,
one record per account event by event) giving the same numbers bit for bit."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from paysim.generator import generate
from schemas import account_state
from schemas.account_state import (
    LONGEST,
    NONE,
    STATE_FEATURE_NAMES,
    AccountRecord,
    offline_features,
    online_features,
)


def _rows(*rows: tuple[int, str, float, str, float, str]) -> pl.DataFrame:
    names = ["step", "type", "amount", "nameOrig", "oldbalanceOrg", "nameDest"]
    return pl.DataFrame([dict(zip(names, r, strict=True)) for r in rows], schema_overrides={"step": pl.Int32})


def _by_name(matrix: np.ndarray, row: int) -> dict[str, float]:
    return dict(zip(STATE_FEATURE_NAMES, matrix[row].tolist(), strict=True))


# A mule story: B receives two credits, sends one payment, then cashes out; A is the victim.
STORY = _rows(
    (1, "TRANSFER", 100.0, "CA", 1000.0, "CB"),  # 0: A -> B
    (1, "TRANSFER", 50.0, "CA", 900.0, "CB"),  # 1: A -> B again, same hour
    (2, "PAYMENT", 10.0, "CB", 150.0, "M1"),  # 2: B pays a merchant, the hour after
    (3, "CASH_IN", 40.0, "CA", 850.0, "CC"),  # 3: A takes cash in (moves no money out)
    (30, "CASH_OUT", 140.0, "CB", 140.0, "CD"),  # 4: B cashes out, 29 hours later
    (30, "TRANSFER", 5.0, "CA", 890.0, "CE"),  # 5: A again
)


@pytest.mark.parametrize("features", [offline_features, online_features], ids=["offline", "online"])
def test_each_rule_on_a_story_worked_by_hand(features: object) -> None:
    matrix = features(STORY)  # type: ignore[operator]
    first = _by_name(matrix, 0)
    assert first["orig_tx_1h"] == 0 and first["orig_amount_24h"] == 0
    assert first["orig_hours_since_last"] == NONE and first["orig_distinct_dests"] == 0
    assert first["dest_new_for_orig"] == 1 and first["orig_moved_share"] == pytest.approx(0.1)
    assert first["received_24h"] == 0 and first["amount_over_received_24h"] == NONE

    second = _by_name(matrix, 1)  # the same hour, the same destination
    assert second["orig_tx_1h"] == 1 and second["orig_amount_1h"] == 100
    assert second["orig_hours_since_last"] == 0 and second["orig_distinct_dests"] == 1
    assert second["dest_new_for_orig"] == 0
    assert second["orig_moved_share"] == pytest.approx(0.15)  # of the first balance seen, 1000

    b_pays = _by_name(matrix, 2)  # B has received both transfers, in the hour before
    assert b_pays["received_1h"] == 150 and b_pays["received_24h"] == 150
    assert b_pays["amount_over_received_24h"] == pytest.approx(10 / 150)

    a_cash_in = _by_name(matrix, 3)  # two hours on: out of the 1-hour window, in the 24-hour one
    assert a_cash_in["orig_tx_1h"] == 0 and a_cash_in["orig_tx_24h"] == 2
    assert a_cash_in["orig_amount_24h"] == 150 and a_cash_in["orig_hours_since_last"] == 2
    assert a_cash_in["orig_moved_share"] == pytest.approx(0.15)  # a CASH_IN moves nothing out

    b_cashes_out = _by_name(matrix, 4)  # 29 hours after the credits: out of every window
    assert b_cashes_out["received_24h"] == 0 and b_cashes_out["orig_tx_24h"] == 0
    assert b_cashes_out["orig_hours_since_last"] == 28 and b_cashes_out["orig_distinct_dests"] == 1

    a_last = _by_name(matrix, 5)
    assert a_last["orig_distinct_dests"] == 2 and a_last["dest_new_for_orig"] == 1
    assert a_last["orig_tx_24h"] == 0 and a_last["orig_hours_since_last"] == 27


@pytest.mark.parametrize("features", [offline_features, online_features], ids=["offline", "online"])
def test_credits_count_from_the_hours_before_the_step_only(features: object) -> None:
    # In the scorer a credit reaches its account through the repartition topic, after the row that made it: a
    # send in the credit's own hour may be scored before it arrives, so neither execution counts it.
    rows = _rows(
        (5, "TRANSFER", 100.0, "CA", 1000.0, "CB"),
        (5, "CASH_OUT", 100.0, "CB", 100.0, "CC"),  # the same hour: not yet
        (6, "CASH_OUT", 30.0, "CB", 0.0, "CC"),  # the hour after: in both windows
        (29, "CASH_OUT", 1.0, "CB", 0.0, "CC"),  # 24 hours after: the 24-hour window's first step
        (30, "CASH_OUT", 1.0, "CB", 0.0, "CC"),  # 25 hours after: gone
    )
    matrix = features(rows)  # type: ignore[operator]
    received = [(_by_name(matrix, i)["received_1h"], _by_name(matrix, i)["received_24h"]) for i in range(1, 5)]
    assert received == [(0, 0), (100, 100), (0, 100), (0, 0)]
    assert _by_name(matrix, 2)["amount_over_received_24h"] == pytest.approx(0.3)


def test_only_earlier_rows_count_whatever_the_file_order() -> None:
    shuffled = STORY.with_row_index("i").sample(fraction=1.0, shuffle=True, seed=3)
    order = shuffled["i"].to_numpy()
    for features in (offline_features, online_features):
        # Rows come back in the frame's order, each with the features of its place in the stream.
        assert np.array_equal(features(shuffled.drop("i")), features(STORY)[order])


@pytest.fixture(scope="module")
def repeat_month() -> pl.DataFrame:
    return generate(steps=200, scale=0.02, seed=3, repeat_clients=True)


def test_offline_and_online_agree_bit_for_bit(repeat_month: pl.DataFrame) -> None:
    offline, online = offline_features(repeat_month), online_features(repeat_month)
    assert offline.shape == (repeat_month.height, len(STATE_FEATURE_NAMES))
    assert np.array_equal(offline, online)
    # ...on data where the state says something: accounts that come back, and mules cashing out a credit.
    column = STATE_FEATURE_NAMES.index
    assert (offline[:, column("orig_tx_24h")] > 0).mean() > 0.3
    fraud_cash_out = ((repeat_month["isFraud"] == 1) & (repeat_month["type"] == "CASH_OUT")).to_numpy()
    assert (offline[fraud_cash_out, column(f"amount_over_received_{LONGEST}h")] > 0.99).mean() > 0.9


def test_remembered_destinations_are_bounded_the_same_way(
    monkeypatch: pytest.MonkeyPatch, repeat_month: pl.DataFrame
) -> None:
    monkeypatch.setattr(account_state, "MAX_REMEMBERED_DESTINATIONS", 3)
    offline, online = offline_features(repeat_month), online_features(repeat_month)
    assert np.array_equal(offline, online)
    distinct = offline[:, STATE_FEATURE_NAMES.index("orig_distinct_dests")]
    assert distinct.max() == 3


def test_a_record_keeps_one_day_of_buckets() -> None:
    record = AccountRecord()
    for step in range(0, 500):
        record.send_features(step, "PAYMENT", 1.0, 100.0, f"M{step}")
        record.apply_credit(step, 2.0)
    # Credits are read from the 24 hours before a step, sends from the 24 hours up to it.
    assert len(record.sends) == LONGEST and len(record.credits) == LONGEST + 1
    assert record.send_features(500, "PAYMENT", 1.0, 100.0, "M0")[1] == 0  # nothing else in this hour
    # A step far in the future empties the windows rather than growing the record.
    record.send_features(1_000_000, "PAYMENT", 1.0, 100.0, "M1")
    assert list(record.sends) == [1_000_000] and record.credits == {}


def test_a_record_reads_back_from_its_bytes_and_scores_on_the_same(repeat_month: pl.DataFrame) -> None:
    records: dict[str, AccountRecord] = {}
    for row in account_state.in_stream_order(repeat_month).head(5000).iter_rows(named=True):
        record = records.setdefault(row["nameOrig"], AccountRecord())
        record.send_features(row["step"], row["type"], row["amount"], row["oldbalanceOrg"], row["nameDest"])
        records.setdefault(row["nameDest"], AccountRecord()).apply_credit(row["step"], row["amount"])
    for record in records.values():
        again = AccountRecord.from_bytes(record.to_bytes())
        assert again == record and again.to_bytes() == record.to_bytes()
        assert again.send_features(300, "TRANSFER", 5.0, 10.0, "C1") == record.send_features(
            300, "TRANSFER", 5.0, 10.0, "C1"
        )


def test_a_record_in_the_first_format_still_reads() -> None:
    # Tables written before records became JSON arrays hold JSON objects (with or without `credited`).
    record = AccountRecord()
    record.send_features(5, "TRANSFER", 1234.56, 5000.0, "C123")
    record.apply_credit(3, 5.0)
    record.credited[2] = 77
    first = (
        b'{"sends":[[5,1,123456]],"credits":[[3,500]],"last_step":5,"destinations":["C123"],'
        b'"first_balance":5000.0,"moved_cents":123456,"latest_step":5,"credited":[[2,77]]}'
    )
    assert AccountRecord.from_bytes(first) == record
    assert AccountRecord.from_bytes(first.replace(b',"credited":[[2,77]]', b"")).credited == {}
    assert record.to_bytes() == b'[[[5,1,123456]],[[3,500]],5,["C123"],5000.0,123456,5,[[2,77]],[]]'


def test_a_record_written_before_it_kept_its_sends_offsets_still_reads() -> None:
    record = AccountRecord()
    record.send_features(5, "TRANSFER", 1234.56, 5000.0, "C123")
    record.credited[2] = 77
    record.sent[4] = 901
    assert AccountRecord.from_bytes(record.to_bytes()) == record
    assert record.to_bytes().endswith(b",[[2,77]],[[4,901]]]")
    before = b'[[[5,1,123456]],[],5,["C123"],5000.0,123456,5,[[2,77]]]'
    old = AccountRecord.from_bytes(before)
    assert old.sent == {} and old.credited == {2: 77} and old.sends == {5: [1, 123456]}
