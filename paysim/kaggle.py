"""Facts about the Kaggle PaySim data set (6,362,620 rows) that calibration and fidelity reports rely on."""

from __future__ import annotations

from core.settings import PROJECT_ROOT

# Two real extracts of the Kaggle file, kept in the repository (CC BY-SA 4.0: tests/fixtures/paysim/README.md).
SAMPLES_DIR = PROJECT_ROOT / "tests" / "fixtures" / "paysim"
SAMPLE_FILES = ("kaggle_head_step1.csv", "kaggle_steps45-95_fraud_enriched.csv")

# Rows and frauds per type in PS_20174392719_1491204439457_log.csv (Kaggle's "Synthetic Financial Datasets
# For Fraud Detection").
KAGGLE_ROWS: dict[str, int] = {
    "CASH_IN": 1_399_284,
    "CASH_OUT": 2_237_500,
    "DEBIT": 41_432,
    "PAYMENT": 2_151_495,
    "TRANSFER": 532_909,
}
KAGGLE_FRAUD: dict[str, int] = {"CASH_OUT": 4_116, "TRANSFER": 4_097}
KAGGLE_STEPS = 743
# Share of fraud rows that move exactly the originator's whole balance.
KAGGLE_WHOLE_BALANCE_SHARE = 0.978
# Fraudsters move a balance in chunks of at most this much (PaySim's transferLimit in the Kaggle run).
TRANSFER_LIMIT = 10_000_000.0


def type_shares() -> dict[str, float]:
    """Each type's share of all Kaggle rows, in percent."""
    total = sum(KAGGLE_ROWS.values())
    return {t: 100.0 * n / total for t, n in KAGGLE_ROWS.items()}


def fraud_rate() -> float:
    """Kaggle's fraud rate, in percent."""
    return 100.0 * sum(KAGGLE_FRAUD.values()) / sum(KAGGLE_ROWS.values())
