"""`generate --repeat-clients`: accounts that act again from what they hold, victims under their own names, mules
that cash out what they received; the default month untouched."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from paysim.generator import MULE_DELAY_HOURS, generate
from paysim.reader import load_paysim
from tests.support.cli import run_momoguard

CENT = 0.01


@pytest.fixture(scope="module")
def repeat_month() -> pl.DataFrame:
    return generate(steps=240, scale=0.03, seed=4, repeat_clients=True)


@pytest.fixture(scope="module")
def default_month() -> pl.DataFrame:
    return generate(steps=240, scale=0.03, seed=4)


def _acted_before(frame: pl.DataFrame) -> float:
    """Share of genuine rows whose originator already originated a row in an earlier step."""
    first_step = frame.group_by("nameOrig").agg(pl.col("step").min().alias("first"))
    genuine = frame.filter(pl.col("isFraud") == 0).join(first_step, on="nameOrig")
    return float((genuine["step"] > genuine["first"]).mean())  # type: ignore[arg-type]


def test_accounts_act_again_in_later_hours(repeat_month: pl.DataFrame, default_month: pl.DataFrame) -> None:
    assert _acted_before(default_month) < 0.01  # Kaggle-faithful: originators (nearly) never come back
    assert _acted_before(repeat_month) > 0.5


def test_the_mode_changes_who_acts_not_what_the_clients_do(
    repeat_month: pl.DataFrame, default_month: pl.DataFrame
) -> None:
    columns = ["step", "type", "amount"]

    def genuine(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("isFraud") == 0).select(columns).sort(columns)

    assert genuine(repeat_month).equals(genuine(default_month))


def test_a_returning_account_starts_from_what_it_left(repeat_month: pl.DataFrame) -> None:
    acts = repeat_month.with_row_index("row").sort("nameOrig", "row")
    pairs = acts.with_columns(
        previous_step=pl.col("step").shift(1).over("nameOrig"),
        previous_new=pl.col("newbalanceOrig").shift(1).over("nameOrig"),
    ).filter(pl.col("previous_step").is_not_null() & (pl.col("previous_step") < pl.col("step")))
    # Only accounts that received nothing in between (credits land on the balance too).
    credits = repeat_month.select(pl.col("nameDest").alias("nameOrig"), pl.col("step").alias("credit_step"))
    credited = (
        pairs.join(credits, on="nameOrig")
        .filter(pl.col("credit_step").is_between(pl.col("previous_step"), pl.col("step")))
        .select("row")
        .unique()
    )
    quiet = pairs.join(credited, on="row", how="anti").filter(pl.col("isFraud") == 0)
    assert quiet.height > 500
    assert ((quiet["oldbalanceOrg"] - quiet["previous_new"]).abs() <= CENT).all()


def test_victims_keep_their_names_and_mules_cash_out_what_they_received(repeat_month: pl.DataFrame) -> None:
    # A takeover chunk is a TRANSFER to a fresh mule, which CASH_OUTs it under its own name 1 to 3 hours later.
    fraud = repeat_month.filter(pl.col("isFraud") == 1)
    transfers = fraud.filter(pl.col("type") == "TRANSFER")
    cash_outs = fraud.filter(pl.col("type") == "CASH_OUT").select(
        pl.col("nameOrig").alias("nameDest"), pl.col("step").alias("cash_out_step"), pl.col("amount").alias("out")
    )
    chunks = transfers.join(cash_outs, on="nameDest", how="inner")
    in_time = transfers.filter(pl.col("step") <= 240 - MULE_DELAY_HOURS).height  # cash-outs due within the month
    assert chunks.height > 20 and chunks.height > 0.9 * in_time
    assert chunks["nameDest"].n_unique() == chunks.height  # a fresh mule per chunk, cashing out once
    waited = chunks["cash_out_step"] - chunks["step"]
    assert waited.min() == 1 and waited.max() == MULE_DELAY_HOURS  # type: ignore[operator]
    moved = chunks["oldbalanceOrg"] - chunks["newbalanceOrig"]
    assert ((chunks["out"] - moved).abs() <= CENT).all()  # ...what it received
    transfers = chunks
    # A victim is an account seen elsewhere under the same name: it sent or received money before.
    genuine = repeat_month.filter(pl.col("isFraud") == 0)
    known = pl.concat([genuine["nameOrig"], genuine["nameDest"]]).unique()
    assert transfers["nameOrig"].is_in(known.implode()).mean() > 0.9  # type: ignore[operator]


def test_generate_command_takes_the_flag(tmp_path: Path) -> None:
    out = tmp_path / "repeat.csv"
    done = run_momoguard(
        "generate", "--steps", "48", "--scale", "0.02", "--seed", "2", "--repeat-clients", "--out", str(out), "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["repeat_clients"] is True
    frame = load_paysim(out)
    assert frame.height == result["rows"]
    made = generate(steps=48, scale=0.02, seed=2, repeat_clients=True)
    assert frame.drop("tx_id").equals(made.drop("tx_id"))
