"""How faithful a generated month is: Kaggle's headline figures, and per-type facts against the real samples."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from core.errors import DataError
from paysim.facts import CENT, chain_facts, ks_statistic, type_facts
from paysim.kaggle import KAGGLE_FRAUD, SAMPLE_FILES, SAMPLES_DIR, TRANSFER_LIMIT, fraud_rate, type_shares
from paysim.reader import load_paysim
from schemas.transaction import TX_TYPES

# The window of the enriched sample: its amounts are compared with the generated rows of the same steps.
KS_STEPS = (45, 95)

SHARE_TOLERANCE_PP = 1.5
FRAUD_RATE_RANGE = (0.10, 0.16)
FRAUD_TYPE_SHARE_RANGE = (40.0, 60.0)
MIN_WHOLE_BALANCE_SHARE = 95.0
MAX_KS = 0.1


@dataclass(frozen=True)
class Check:
    """One fidelity target: the measured value, the target in words, and whether it is met."""

    name: str
    value: float
    target: str
    passed: bool


@dataclass
class FidelityReport:
    """Targets met or not, plus per-type facts of the generated month beside the real samples'."""

    rows: int
    steps: int
    checks: list[Check] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)
    chains: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "steps": self.steps,
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
            "facts": self.facts,
            "chains": self.chains,
            "notes": self.notes,
        }


def load_samples(samples_dir: Path = SAMPLES_DIR) -> pl.DataFrame:
    """The real Kaggle sample rows (the repository's copies by default), as one frame."""
    missing = [name for name in SAMPLE_FILES if not (samples_dir / name).is_file()]
    if missing:
        raise DataError(f"no Kaggle sample {missing[0]} in {samples_dir}")
    return pl.concat([load_paysim(samples_dir / name) for name in SAMPLE_FILES])


def fidelity(generated: pl.DataFrame, samples: pl.DataFrame) -> FidelityReport:
    """Compare a generated month with Kaggle's figures and with the real sample rows."""
    if generated.height == 0:
        raise DataError("the generated frame is empty")
    report = FidelityReport(rows=generated.height, steps=int(generated["step"].max()))  # type: ignore[arg-type]
    report.checks += _type_share_checks(generated)
    report.checks += _fraud_checks(generated)
    ks_checks, matched = _amount_checks(generated, samples)
    report.checks += ks_checks
    report.facts = _facts_side_by_side(generated, samples)
    report.chains = chain_facts(generated).join(chain_facts(samples), on="type", suffix="_real").to_dicts()
    report.notes = {
        "ks_at_the_real_rows_steps": matched,
        "flagged_fraud_rows": int(generated["isFlaggedFraud"].sum()),
        "fraud_rows": int(generated["isFraud"].sum()),
    }
    return report


def _type_share_checks(generated: pl.DataFrame) -> list[Check]:
    counts = dict(generated.group_by("type").len().iter_rows())
    checks = []
    for tx_type, kaggle in type_shares().items():
        share = 100.0 * counts.get(tx_type, 0) / generated.height
        checks.append(
            Check(
                f"{tx_type} share %",
                round(share, 3),
                f"{kaggle:.2f} +- {SHARE_TOLERANCE_PP}",
                abs(share - kaggle) <= SHARE_TOLERANCE_PP,
            )
        )
    return checks


def _fraud_checks(generated: pl.DataFrame) -> list[Check]:
    fraud = generated.filter(pl.col("isFraud") == 1)
    rate = 100.0 * fraud.height / generated.height
    low, high = FRAUD_RATE_RANGE
    checks = [Check("fraud rate %", round(rate, 4), f"{low}-{high} (Kaggle {fraud_rate():.3f})", low <= rate <= high)]
    others = int((~fraud["type"].is_in(list(KAGGLE_FRAUD))).sum())
    checks.append(Check("fraud rows of other types than TRANSFER/CASH_OUT", float(others), "0", others == 0))
    for tx_type in KAGGLE_FRAUD:
        share = 100.0 * int((fraud["type"] == tx_type).sum()) / max(fraud.height, 1)
        checks.append(
            Check(
                f"{tx_type} share of frauds %",
                round(share, 2),
                "{}-{}".format(*FRAUD_TYPE_SHARE_RANGE),
                FRAUD_TYPE_SHARE_RANGE[0] <= share <= FRAUD_TYPE_SHARE_RANGE[1],
            )
        )
    whole = (fraud["oldbalanceOrg"] > 0) & ((fraud["amount"] - fraud["oldbalanceOrg"]).abs() <= CENT)
    whole_share = 100.0 * int(whole.sum()) / max(fraud.height, 1)
    checks.append(
        Check(
            "fraud rows moving the whole balance %",
            round(whole_share, 2),
            f">= {MIN_WHOLE_BALANCE_SHARE} (Kaggle 97.8)",
            whole_share >= MIN_WHOLE_BALANCE_SHARE,
        )
    )
    largest = float(fraud["amount"].max() or 0.0) if fraud.height else 0.0  # type: ignore[arg-type]
    checks.append(Check("largest fraud amount", largest, f"== {TRANSFER_LIMIT:,.0f}", largest == TRANSFER_LIMIT))
    return checks


def _amount_checks(generated: pl.DataFrame, samples: pl.DataFrame) -> tuple[list[Check], dict[str, float]]:
    """KS distance of genuine amounts per type: generated steps 45-95 against the real rows of steps 45-95.

    The real rows of that window sit in steps 94 and 95 (steps 45-93 hold only fraud); the KS distance
    against the generated rows of exactly those steps is reported beside it.
    """
    first, last = KS_STEPS
    window = pl.col("step").is_between(first, last) & (pl.col("isFraud") == 0)
    real = samples.filter(window)
    real_steps = real["step"].unique().to_list()
    gen = generated.filter(window)
    gen_matched = generated.filter(pl.col("step").is_in(real_steps) & (pl.col("isFraud") == 0))
    checks, matched = [], {}
    for tx_type in TX_TYPES:
        real_amounts = real.filter(pl.col("type") == tx_type)["amount"].to_numpy()
        gen_amounts = gen.filter(pl.col("type") == tx_type)["amount"].to_numpy()
        ks = ks_statistic(gen_amounts, real_amounts)
        checks.append(
            Check(
                f"{tx_type} amount KS, steps {first}-{last} (n={gen_amounts.size} vs {real_amounts.size} real)",
                round(ks, 4),
                f"<= {MAX_KS}",
                bool(np.isfinite(ks) and ks <= MAX_KS),
            )
        )
        matched_amounts = gen_matched.filter(pl.col("type") == tx_type)["amount"].to_numpy()
        matched[tx_type] = round(ks_statistic(matched_amounts, real_amounts), 4)
    return checks, matched


def _facts_side_by_side(generated: pl.DataFrame, samples: pl.DataFrame) -> list[dict[str, Any]]:
    gen, real = type_facts(generated), type_facts(samples)
    return gen.join(real, on=["type", "isFraud"], how="full", suffix="_real", coalesce=True).to_dicts()
