"""The generator: determinism, the Kaggle format, PaySim's mechanics and logging quirks, the takeover pattern."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from core.errors import ConfigError, DataError
from paysim.calibration import load_calibration
from paysim.generator import _fraud_step, _TransferWatch, expected_rows, generate, write_paysim
from paysim.javafmt import java_doubles
from paysim.reader import PAYSIM_SCHEMA, load_paysim
from tests.paysim.conftest import HEAD_SAMPLE

WITHDRAWALS = ["CASH_OUT", "DEBIT", "PAYMENT", "TRANSFER"]
CENT = 0.01


def test_same_seed_same_bytes_other_seed_other_rows(tmp_path: Path) -> None:
    first, second = generate(steps=120, scale=0.02, seed=5), generate(steps=120, scale=0.02, seed=5)
    assert first.equals(second)
    write_paysim(first, tmp_path / "a.csv")
    write_paysim(second, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert not first.equals(generate(steps=120, scale=0.02, seed=6))


def test_columns_dtypes_and_row_ids(month: pl.DataFrame) -> None:
    assert month.schema == pl.Schema(PAYSIM_SCHEMA)
    assert month["tx_id"].to_list()[:3] == ["1", "2", "3"]
    assert month["tx_id"].n_unique() == month.height
    # The month's last day has no genuine volume (as in Kaggle), only the occasional fraud.
    assert month["step"].min() == 1 and 700 < month["step"].max() <= 743
    steps = month["step"].to_numpy()
    assert (steps[1:] >= steps[:-1]).all()
    assert month["nameOrig"].str.contains(r"^C\d+$").all()
    assert month["nameDest"].str.contains(r"^[CM]\d+$").all()
    assert month.null_count().sum_horizontal().item() == 0


def test_volume_is_what_expected_rows_promises(month: pl.DataFrame) -> None:
    assert abs(month.height - expected_rows(steps=743, scale=0.05)) < 0.01 * month.height


def test_csv_and_parquet_read_back_identical(month: pl.DataFrame, tmp_path: Path) -> None:
    part = month.head(50_000)
    write_paysim(part, tmp_path / "month.csv")
    write_paysim(part, tmp_path / "month.parquet")
    assert load_paysim(tmp_path / "month.csv").equals(part)
    assert pl.read_parquet(tmp_path / "month.parquet").equals(part)


def test_writer_reproduces_the_kaggle_file_byte_for_byte(tmp_path: Path) -> None:
    write_paysim(load_paysim(HEAD_SAMPLE), tmp_path / "head.csv")
    assert (tmp_path / "head.csv").read_bytes() == HEAD_SAMPLE.read_bytes()


def test_java_double_text() -> None:
    values = pl.Series([0.0, 181.0, 9839.64, 10_000_000.0, 19_169_204.93, 123_456_789.12])
    assert java_doubles(values).to_list() == [
        "0.0", "181.0", "9839.64", "1.0E7", "1.916920493E7", "1.2345678912E8"
    ]  # fmt: skip


def test_bad_arguments_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        generate(steps=0)
    with pytest.raises(ConfigError):
        generate(steps=10, scale=0.0)
    frame = generate(steps=2, scale=0.01)
    with pytest.raises(ConfigError):
        write_paysim(frame, tmp_path / "month.json")
    with pytest.raises(DataError):
        write_paysim(frame, tmp_path / "no" / "such" / "month.csv")


def test_merchants_are_payment_destinations_with_zero_balances(month: pl.DataFrame) -> None:
    merchant = month["nameDest"].str.starts_with("M")
    assert (merchant == (month["type"] == "PAYMENT")).all()
    paid = month.filter(merchant)
    assert (paid["oldbalanceDest"] == 0).all() and (paid["newbalanceDest"] == 0).all()


def test_a_withdrawal_larger_than_the_balance_leaves_zero(month: pl.DataFrame) -> None:
    genuine = month.filter((pl.col("isFraud") == 0) & pl.col("type").is_in(WITHDRAWALS))
    over = genuine.filter(pl.col("amount") > pl.col("oldbalanceOrg"))
    assert over.height > 0.5 * genuine.filter(pl.col("type") == "CASH_OUT").height
    assert (over["newbalanceOrig"] == 0).all()
    # So the originator's balance error (new + amount - old) is often not zero, as in Kaggle.
    assert ((over["newbalanceOrig"] + over["amount"] - over["oldbalanceOrg"]) > CENT).mean() > 0.5
    covered = genuine.filter(pl.col("amount") <= pl.col("oldbalanceOrg"))
    gap = (covered["oldbalanceOrg"] - covered["amount"] - covered["newbalanceOrig"]).abs()
    assert (gap <= CENT).all()


def test_cash_in_adds_to_the_originator(month: pl.DataFrame) -> None:
    cash_in = month.filter(pl.col("type") == "CASH_IN")
    gap = (cash_in["oldbalanceOrg"] + cash_in["amount"] - cash_in["newbalanceOrig"]).abs()
    assert (gap <= CENT).all()


def test_genuine_rows_never_move_exactly_the_whole_balance(month: pl.DataFrame) -> None:
    genuine = month.filter((pl.col("isFraud") == 0) & (pl.col("oldbalanceOrg") > 0))
    assert ((genuine["amount"] - genuine["oldbalanceOrg"]).abs() > CENT).all()


def test_clients_act_again_from_the_balance_they_left(month: pl.DataFrame) -> None:
    chained = (
        (pl.col("type") == pl.col("type").shift(1))
        & (pl.col("oldbalanceOrg") == pl.col("newbalanceOrig").shift(1))
        & (pl.col("oldbalanceOrg") > 0)
    )
    cash_in = month.filter(pl.col("isFraud") == 0).select(chained.alias("chained"), "type")
    # CASH_IN clients repeat most (long chains of growing balances), DEBIT clients almost never.
    share = dict(cash_in.group_by("type").agg(pl.col("chained").mean()).iter_rows())
    assert share["CASH_IN"] > 0.5 > share["DEBIT"]


def test_destination_balances_are_logged_at_the_end_of_the_hour(month: pl.DataFrame) -> None:
    to_clients = month.filter(pl.col("nameDest").str.starts_with("C") & (pl.col("isFraud") == 0))
    repeated = to_clients.filter(pl.len().over("step", "nameDest") > 1)
    assert repeated.height > 100
    per_hour = repeated.group_by("step", "nameDest").agg(pl.col("newbalanceDest").n_unique().alias("values"))
    assert (per_hour["values"] == 1).all()
    # ...while oldbalanceDest moves row by row: a CASH_OUT adds its amount for the next row to the same account.
    pairs = repeated.with_columns(
        next_old=pl.col("oldbalanceDest").shift(-1).over("step", "nameDest"),
    ).filter(pl.col("next_old").is_not_null() & (pl.col("type") == "CASH_OUT"))
    assert ((pairs["next_old"] - pairs["oldbalanceDest"] - pairs["amount"]).abs() <= CENT).mean() > 0.95


def test_fraud_is_an_account_takeover_through_mules(month: pl.DataFrame) -> None:
    fraud = month.filter(pl.col("isFraud") == 1)
    assert set(fraud["type"].unique()) == {"TRANSFER", "CASH_OUT"}
    share = (fraud["type"] == "TRANSFER").mean()
    assert 0.4 <= share <= 0.6  # type: ignore[operator]
    assert 0.10 <= 100 * fraud.height / month.height <= 0.16
    # A transfer to a fresh mule (balances 0 -> 0, logged after the mule cashed out), the mule cashes out at once.
    transfers = month.with_columns(following=pl.struct(pl.all()).shift(-1)).filter(
        (pl.col("isFraud") == 1) & (pl.col("type") == "TRANSFER") & (pl.col("newbalanceOrig") < pl.col("oldbalanceOrg"))
    )
    cash_out = transfers["following"].struct.unnest()
    assert (cash_out["type"] == "CASH_OUT").all() and (cash_out["isFraud"] == 1).all()
    assert (cash_out["amount"] == transfers["amount"]).all()
    assert (cash_out["oldbalanceOrg"] == cash_out["amount"]).all() and (cash_out["newbalanceOrig"] == 0).all()
    assert ((transfers["oldbalanceDest"] == 0) & (transfers["newbalanceDest"] == 0)).all()
    whole = (fraud["amount"] - fraud["oldbalanceOrg"]).abs() <= CENT
    assert whole.mean() >= 0.95  # type: ignore[operator]


def test_balances_over_the_limit_leave_in_chunks_of_ten_million(month: pl.DataFrame) -> None:
    fraud = month.filter(pl.col("isFraud") == 1)
    assert fraud["amount"].max() == 10_000_000.0
    big = fraud.filter((pl.col("type") == "TRANSFER") & (pl.col("oldbalanceOrg") > 10_000_000.0 + CENT))
    assert big.height > 0
    assert (big["amount"] == 10_000_000.0).all()


def test_takeover_splits_and_flags_like_paysim() -> None:
    calibration = load_calibration()
    rng = np.random.default_rng(0)
    balance = np.array([25_000_000.0])
    watch = _TransferWatch(np.zeros(1, dtype=np.int8), np.zeros(1))
    rows, _, _, drained, _ = _fraud_step(calibration, 7, 1, balance, watch, 1, rng, rng)
    to_mule = (rows.tx_type == 4) & (rows.dest == -1)
    assert rows.amount[to_mule].tolist() == [10_000_000.0, 10_000_000.0, 5_000_000.0]
    assert rows.old_orig[to_mule].tolist() == [25_000_000.0, 15_000_000.0, 5_000_000.0]
    assert drained[1][0] >= 25_000_000.0 and not rows.flagged.any()
    # PaySim watched the account's first three transfers, its balance then at most 25 million.
    assert watch.count[0] == 3 and watch.mark[0] == 25_000_000.0

    # The same account robbed again once it holds 3 million: a fall of 22 + 3 million is not flagged...
    balance[0] = 3_000_000.0
    rows, *_ = _fraud_step(calibration, 8, 1, balance, watch, 1, rng, rng)
    assert not rows.flagged.any()
    # ...but from a 60 million mark it is: the transfer is flagged and moves nothing, the mule cashes out 0.
    watch.mark[0] = 60_000_000.0
    rows, _, _, drained, _ = _fraud_step(calibration, 9, 1, balance, watch, 1, rng, rng)
    flagged = rows.flagged == 1
    assert flagged.sum() == 1 and rows.amount[flagged][0] == 3_000_000.0
    assert (rows.old_orig[flagged] == rows.new_orig[flagged]).all()
    mule_cash_out = (rows.tx_type == 1) & (rows.fraud == 1) & (rows.dest >= 0) & (rows.old_orig == 0)
    assert (rows.amount[mule_cash_out] == 0).sum() == 1
    assert drained[1][0] == 0.0


@pytest.mark.parametrize(("steps", "scale"), [(1, 1e-6), (3, 0.001), (50, 0.0005)])
def test_tiny_months_are_valid_frames(steps: int, scale: float) -> None:
    frame = generate(steps=steps, scale=scale, seed=1)
    assert frame.schema == pl.Schema(PAYSIM_SCHEMA)
    assert frame.height == 0 or frame["step"].max() <= steps


def test_a_longer_run_repeats_the_month_profile() -> None:
    frame = generate(steps=800, scale=0.01, seed=2)
    second = frame.filter(pl.col("step") > 744)
    # Steps 745-800 replay the volume of steps 1-56.
    assert 0.5 < second.height / frame.filter(pl.col("step") <= 56).height < 2.0
