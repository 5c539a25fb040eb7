"""The live-shadow gate: a new version shadows the champion first, and is promoted or rejected on live outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import registry
from core.settings import Settings
from tests.support.models import register_model
from tests.training.conftest import write_paysim_csv
from training.flow import load_log, retrain
from training.live import comparison
from training.promotion import decide_live


def shadowed(truth: list[bool], champion: list[bool], challenger: list[bool]) -> pl.DataFrame:
    """Shadowed rows as the log holds them: both models' decisions, scores that rank like them, the labels."""
    n = len(truth)
    return pl.DataFrame(
        {
            "tx_id": [f"t{i}" for i in range(n)],
            "scored_at": [datetime(2026, 12, 1, tzinfo=UTC)] * n,
            "amount": [100.0 * (i + 1) for i in range(n)],
            "model_version": ["1"] * n,
            "decision": ["block" if b else "allow" for b in champion],
            "score": [0.9 if b else 0.1 for b in champion],
            "shadow_score": [0.9 if b else 0.1 for b in challenger],
            "shadow_decision": ["block" if b else "allow" for b in challenger],
            "is_fraud": truth,
        }
    )


def gate(rows: pl.DataFrame, min_frauds: int = 3) -> str:
    live = comparison("momoguard-fraud", "2", rows)
    return decide_live(live, min_frauds=min_frauds, auprc_margin=0.01, amount_recall_margin=0.02).outcome


def test_the_live_gate_waits_for_labelled_frauds_then_promotes_the_better_and_rejects_the_worse() -> None:
    truth = [True] * 4 + [False] * 16
    catches_all = truth
    misses_two = [True, True, False, False] + [False] * 16
    assert gate(shadowed(truth, champion=misses_two, challenger=catches_all)) == "promote"
    assert gate(shadowed(truth, champion=catches_all, challenger=misses_two)) == "reject"
    assert gate(shadowed(truth, champion=catches_all, challenger=catches_all), min_frauds=5) == "wait"
    live = comparison("momoguard-fraud", "2", shadowed(truth, champion=catches_all, challenger=misses_two))
    assert (live.rows, live.labelled, live.labelled_fraud, live.disagreements) == (20, 20, 4, 2)
    assert live.challenger_figures.recall == 0.5 and live.champion.recall == 1.0
    assert live.challenger_figures.fraud_amount_recall == pytest.approx(300 / 1000)
    assert np.isclose(live.agreement or 0, 0.9)


@pytest.mark.usefixtures("prefect_harness")
def test_with_the_gate_on_a_new_version_becomes_challenger_and_the_one_before_waits_for_outcomes(
    settings: Settings, windowed: pl.DataFrame, tmp_path: Path
) -> None:
    # Offline margins wide open: this test is about what follows the offline rule, not the rule itself.
    gated = settings.model_copy(
        update={"promotion_requires_shadow": True, "promotion_auprc_margin": 1.0, "promotion_amount_recall_margin": 1.0}
    )
    register_model(gated, rounds=3, threshold=0.5, tmp=tmp_path)  # the champion, version 1
    old = register_model(gated, rounds=4, threshold=0.5, tmp=tmp_path, champion=False)
    registry.make_challenger(gated, old, "test: shadowing before this run")

    result = retrain(csv=str(write_paysim_csv(windowed, tmp_path / "good.csv")), settings=gated)
    assert result.settled is not None and result.settled.startswith("challenger v2: wait: "), result.settled
    assert result.version == "3" and not result.promoted and result.challenger == "3", result.reason
    assert "shadowing the champion before promotion" in result.reason
    assert registry.champion_version(gated) == "1"
    assert registry.get_version(gated, "2").tags["momoguard.status"] == "candidate"


def test_the_scheduled_flow_falls_back_to_generated_data_and_says_why(settings: Settings) -> None:
    found, why = load_log.fn(settings, "pre_settlement", False)
    assert found is None
    assert why.startswith(f"the scored-transaction log in {settings.feedback_dir} holds 0 labelled fraud(s)")
    assert "MOMOGUARD_LOG_MIN_FRAUDS" in why
