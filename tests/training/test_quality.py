"""Threshold policies, the fraud team's metrics and the promotion rule, on numbers worked out by hand."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from core.errors import DataError
from training.errors import TrainingError
from training.promotion import PromotionDecision, decide
from training.quality import choose_threshold, measure

# Six transactions, best score first: fraud, fraud, genuine, fraud, genuine, genuine.
LABELS = np.array([1, 1, 0, 1, 0, 0])
SCORES = np.array([0.95, 0.9, 0.8, 0.6, 0.3, 0.1])
AMOUNTS = np.array([100.0, 50.0, 7.0, 850.0, 3.0, 1.0])


def test_metrics_at_a_threshold() -> None:
    m = measure(LABELS, SCORES, AMOUNTS, threshold=0.85)
    assert (m.true_positives, m.false_positives, m.false_negatives, m.true_negatives) == (2, 0, 1, 3)
    assert m.precision == 1.0 and m.recall == pytest.approx(2 / 3)
    assert m.false_block_rate == 0.0
    assert m.fraud_amount_recall == pytest.approx(150 / 1000)  # the big fraud slips through
    m = measure(LABELS, SCORES, AMOUNTS, threshold=0.6)  # block when score >= threshold
    assert m.recall == 1.0 and m.fraud_amount_recall == 1.0
    assert m.false_block_rate == pytest.approx(1 / 3) and m.precision == 0.75
    assert m.auprc == pytest.approx((1 + 1 + 0.75) / 3)


def blocked_by(policy: str, target: float) -> list[float]:
    threshold = choose_threshold(LABELS, SCORES, policy, target)
    return [s for s in SCORES.tolist() if s >= threshold]


def test_threshold_policies() -> None:
    # F1: 0.8 blocking the top 2, 0.857 blocking the top 4 (3 of 4 blocks are fraud, all fraud caught).
    assert blocked_by("best_f1", 0.0) == [0.95, 0.9, 0.8, 0.6]
    assert blocked_by("min_precision", 1.0) == [0.95, 0.9]
    assert blocked_by("min_precision", 0.7) == [0.95, 0.9, 0.8, 0.6]
    assert blocked_by("max_false_block_rate", 0.0) == [0.95, 0.9]
    assert blocked_by("max_false_block_rate", 0.34) == [0.95, 0.9, 0.8, 0.6]
    # The cut sits halfway in log-odds between the last blocked score and the first allowed one.
    odds_06, odds_03 = 0.6 / 0.4, 0.3 / 0.7
    assert choose_threshold(LABELS, SCORES, "best_f1", 0.0) == pytest.approx(1 / (1 + 1 / np.sqrt(odds_06 * odds_03)))
    with pytest.raises(TrainingError, match="no threshold reaches precision >= 1.0"):
        choose_threshold(np.array([0, 1]), np.array([0.9, 0.1]), "min_precision", 1.0)
    with pytest.raises(TrainingError, match="unknown threshold policy"):
        choose_threshold(LABELS, SCORES, "coin_flip", 0.5)
    with pytest.raises(DataError, match="no fraud"):
        choose_threshold(np.zeros(3), np.ones(3), "best_f1", 0.0)


def test_threshold_keeps_its_margin_when_scores_saturate() -> None:
    labels = np.array([1, 1, 0, 0])
    scores = np.array([1 - 1e-9, 1 - 2e-9, 0.2, 0.1])
    threshold = choose_threshold(labels, scores, "best_f1", 0.0)
    # Halfway in log-odds: about 9 nats from either side, where a plain midpoint of scores would be 0.6.
    odds_top, odds_bottom = (1 - 2e-9) / 2e-9, 0.2 / 0.8
    assert threshold == pytest.approx(1 / (1 + 1 / np.sqrt(odds_top * odds_bottom)))
    assert 0.2 < threshold < 1 - 2e-9


def test_one_class_window_has_no_auprc() -> None:
    m = measure(np.zeros(3), np.array([0.1, 0.2, 0.9]), np.ones(3), 0.5)
    assert math.isnan(m.auprc) and m.false_block_rate == pytest.approx(1 / 3)


def rule(
    challenger: float, champion: float | None, challenger_recall: float = 0.9, champion_recall: float = 0.9
) -> PromotionDecision:
    base = measure(LABELS, SCORES, AMOUNTS, 0.5)
    return decide(
        replace(base, auprc=challenger, fraud_amount_recall=challenger_recall),
        None if champion is None else replace(base, auprc=champion, fraud_amount_recall=champion_recall),
        auprc_margin=0.002, amount_recall_margin=0.01, auprc_floor=0.9, champion_version="3",
    )  # fmt: skip


def test_promotion_rule() -> None:
    assert rule(0.95, None).promote
    first = rule(0.85, None)
    assert not first.promote and "below floor 0.9" in first.reason
    assert rule(0.9985, 0.9999).promote  # within the AUPRC margin
    worse = rule(0.99, 0.9999)
    assert not worse.promote and "below champion v3" in worse.reason and "AUPRC" in worse.reason
    less_money = rule(0.9999, 0.9999, challenger_recall=0.88)
    assert not less_money.promote and "fraud-amount recall" in less_money.reason
    assert rule(0.9999, 0.9999, challenger_recall=0.895).promote


def test_review_policies_pick_a_review_threshold_below_the_block_threshold() -> None:
    from training.quality import choose_review_threshold, review_band

    block = 0.85  # blocks the top two (both fraud): recall 2/3
    # min_recall 0.9: the third fraud (0.6) must be reviewed, the highest cut that does so lies in (0.3, 0.6).
    review = choose_review_threshold(LABELS, SCORES, block, "min_recall", 0.9)
    assert review is not None and 0.3 < review < 0.6
    band = review_band(LABELS, SCORES, block, review)
    assert (band.review_rate, band.recall_with_review, band.review_precision) == (pytest.approx(2 / 6), 1.0, 0.5)
    assert choose_review_threshold(LABELS, SCORES, block, "min_recall", 0.5) is None, "blocking alone reaches it"
    # max_review_rate: the lowest cut sending at most a third of all transactions to review is the same one.
    assert choose_review_threshold(LABELS, SCORES, block, "max_review_rate", 0.34) == review
    assert choose_review_threshold(LABELS, SCORES, block, "max_review_rate", 0.1) is None, "no cut is that small"
    assert choose_review_threshold(LABELS, SCORES, block, "none", 0.9) is None
    with pytest.raises(TrainingError, match="unknown review policy"):
        choose_review_threshold(LABELS, SCORES, block, "most", 0.9)
    with pytest.raises(DataError):
        choose_review_threshold(np.zeros(6), SCORES, block, "min_recall", 0.9)
