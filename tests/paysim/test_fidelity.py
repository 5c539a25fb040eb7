"""Fidelity targets on small months, and the per-type facts a fraud model sees, against the real samples."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import pytest

from paysim.calibrate import _aftermath_share, _chunks_per_takeover, _kaggle_amount_fit, _takeovers_per_step
from paysim.calibration import CALIBRATION_FILE
from paysim.facts import chain_runs, type_facts
from paysim.fidelity import fidelity
from paysim.kaggle import SAMPLE_FILES, SAMPLES_DIR


def test_month_meets_the_kaggle_targets(month: pl.DataFrame, kaggle_samples: pl.DataFrame) -> None:
    report = fidelity(month, kaggle_samples)
    headline = [c for c in report.checks if "KS" not in c.name]
    assert len(headline) == 11
    failed = [(c.name, c.value, c.target) for c in headline if not c.passed]
    assert not failed
    json.dumps(report.to_dict(), default=str)


@pytest.mark.parametrize("tx_type", ["CASH_IN", "CASH_OUT", "DEBIT", "PAYMENT", "TRANSFER"])
def test_amounts_of_steps_45_to_95_match_the_real_rows(
    evening: pl.DataFrame, kaggle_samples: pl.DataFrame, tx_type: str
) -> None:
    check = next(c for c in fidelity(evening, kaggle_samples).checks if c.name.startswith(f"{tx_type} amount KS"))
    assert check.value <= 0.1, check


def test_amount_corrections_are_recorded_with_their_held_out_check() -> None:
    """Every type's Kaggle correction says what it was fitted on and how it does on step 1, left out of the fit."""
    table = json.loads(CALIBRATION_FILE.read_text())["amount"]
    for tx_type, figures in table.items():
        fit = figures["kaggle_fit"]
        assert fit["rows"] > 0 and fit["held_out_rows"] > 0, tx_type
        assert fit["ks_fitted"] <= fit["ks_table"], tx_type
        if (figures["kaggle_scale"], figures["kaggle_spread"]) != (1.0, 1.0):
            assert fit["ks_table"] - fit["ks_fitted"] > fit["noise"], tx_type


# Per type and label: (fact, tolerance) pairs the generated month must share with the real samples.
# These are the relations a pre-settlement fraud model learns; docs/GENERATOR.md has the full table.
FACTS = {
    ("CASH_OUT", 0): {"orig_zero": 0.06, "exceeds_balance": 0.05, "moves_whole": 0.001, "dest_zero": 0.05},
    ("TRANSFER", 0): {"orig_zero": 0.08, "exceeds_balance": 0.05, "moves_whole": 0.001, "dest_zero": 0.05},
    ("PAYMENT", 0): {"orig_zero": 0.05, "exceeds_balance": 0.05, "moves_whole": 0.001},
    ("CASH_IN", 0): {"orig_zero": 0.02, "exceeds_balance": 0.06, "dest_zero": 0.04},
    ("DEBIT", 0): {"exceeds_balance": 0.08, "dest_zero": 0.02},
    ("TRANSFER", 1): {"moves_whole": 0.06, "dest_zero_to_zero": 0.03},
    ("CASH_OUT", 1): {"moves_whole": 0.03, "dest_zero_to_zero": 0.01},
}


@pytest.mark.parametrize(("tx_type", "label"), list(FACTS))
def test_balance_relations_match_the_real_samples(
    month: pl.DataFrame, kaggle_samples: pl.DataFrame, tx_type: str, label: int
) -> None:
    def facts(frame: pl.DataFrame) -> dict[str, float]:
        return type_facts(frame).filter((pl.col("type") == tx_type) & (pl.col("isFraud") == label)).row(0, named=True)

    generated, real = facts(month), facts(kaggle_samples)
    off = {
        name: (round(generated[name], 4), round(real[name], 4))
        for name, tolerance in FACTS[(tx_type, label)].items()
        if abs(generated[name] - real[name]) > tolerance
    }
    assert not off, off


def test_genuine_destinations_hold_what_real_ones_hold(month: pl.DataFrame, kaggle_samples: pl.DataFrame) -> None:
    def medians(frame: pl.DataFrame) -> dict[str, float]:
        genuine = frame.filter((pl.col("isFraud") == 0) & pl.col("type").is_in(["CASH_OUT", "TRANSFER"]))
        return dict(genuine.group_by("type").agg(pl.col("oldbalanceDest").median()).iter_rows())

    generated, real = medians(month), medians(kaggle_samples)
    for tx_type in ("CASH_OUT", "TRANSFER"):
        assert 0.6 < generated[tx_type] / real[tx_type] < 1.6


def test_the_shipped_table_was_derived_from_the_repository_samples() -> None:
    """The table records the SHA-256 of the samples it was fitted on: they are the copies the tests read."""
    shipped = json.loads(CALIBRATION_FILE.read_text())["sources"]
    for name in SAMPLE_FILES:
        assert shipped[name] == hashlib.sha256((SAMPLES_DIR / name).read_bytes()).hexdigest(), name


def test_the_figures_fitted_on_the_samples_are_what_the_script_fits(kaggle_samples: pl.DataFrame) -> None:
    """Every figure of the table that the samples alone decide, fitted again from the repository's copies.

    The rest comes from PaySim's parameter tables (GPL-3.0), which stay outside the repository:
    `python -m paysim.calibrate --params DIR --check` re-derives the whole table where they are at hand.
    """
    shipped = json.loads(CALIBRATION_FILE.read_text())
    fitted = _kaggle_amount_fit(kaggle_samples, shipped["amount"])
    for tx_type, figures in fitted.items():
        assert {k: shipped["amount"][tx_type][k] for k in figures} == figures, tx_type
    chunks = _chunks_per_takeover(kaggle_samples)
    aftermath = _aftermath_share(kaggle_samples, chunks)
    fraud = shipped["fraud"]
    assert (fraud["chunks_per_takeover"], fraud["aftermath_share"]) == (round(chunks, 4), aftermath)
    assert fraud["takeovers_per_step"] == _takeovers_per_step(chunks, aftermath)
    starts = chain_runs(kaggle_samples)["first_balance"].to_numpy()
    assert shipped["start_balance"]["zero_share"] == round(float((starts == 0).mean()), 4)
    for tx_type, chains in shipped["chain_length"].items():
        assert chains["sampled_chains"] == chain_runs(kaggle_samples).filter(pl.col("type") == tx_type).height, tx_type
