"""Replay fixtures: the real Kaggle kaggle_samples, and small generated months that the generator tests reuse."""

from __future__ import annotations

import polars as pl
import pytest

from paysim.fidelity import load_samples
from paysim.generator import generate
from paysim.kaggle import SAMPLES_DIR

HEAD_SAMPLE = SAMPLES_DIR / "kaggle_head_step1.csv"
ENRICHED_SAMPLE = SAMPLES_DIR / "kaggle_steps45-95_fraud_enriched.csv"


@pytest.fixture(scope="session")
def kaggle_samples() -> pl.DataFrame:
    return load_samples(SAMPLES_DIR)


@pytest.fixture(scope="session")
def month() -> pl.DataFrame:
    """A whole month at 5 % of Kaggle's volume (~318,000 rows, under a second to make)."""
    return generate(steps=743, scale=0.05, seed=11)


@pytest.fixture(scope="session")
def evening() -> pl.DataFrame:
    """The first 95 steps at 20 % of Kaggle's volume: enough rows in steps 45-95 to compare amounts."""
    return generate(steps=95, scale=0.2, seed=11)
