"""Replay fixtures: the shared Kaggle samples, and small generated months shared by the generator tests."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from momoguard.settings import PROJECT_ROOT
from replay.fidelity import load_samples
from replay.generator import generate

PAYSIM_DIR = Path(os.environ.get("MOMOGUARD_PAYSIM_SHARED", PROJECT_ROOT.parent / "shared" / "data" / "paysim"))
SAMPLES_DIR = PAYSIM_DIR / "samples"
HEAD_SAMPLE = SAMPLES_DIR / "kaggle_head_step1.csv"
ENRICHED_SAMPLE = SAMPLES_DIR / "kaggle_steps45-95_fraud_enriched.csv"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not HEAD_SAMPLE.is_file() or not ENRICHED_SAMPLE.is_file():
        pytest.fail(f"no Kaggle samples under {SAMPLES_DIR} (set MOMOGUARD_PAYSIM_SHARED)")
    return SAMPLES_DIR


@pytest.fixture(scope="session")
def samples(samples_dir: Path) -> pl.DataFrame:
    return load_samples(samples_dir)


@pytest.fixture(scope="session")
def month() -> pl.DataFrame:
    """A whole month at 5 % of Kaggle's volume (~318,000 rows, under a second to make)."""
    return generate(steps=743, scale=0.05, seed=11)


@pytest.fixture(scope="session")
def evening() -> pl.DataFrame:
    """The first 95 steps at 20 % of Kaggle's volume: enough rows in steps 45-95 to compare amounts."""
    return generate(steps=95, scale=0.2, seed=11)
