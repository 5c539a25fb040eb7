"""Measuring a fraud model: the threshold policy, the metrics a fraud team reads, and the plots.

Threshold policies (setting `threshold_policy`, target in `threshold_target`), applied on the validation
window; a transaction is blocked when its score is >= the threshold. Each policy picks the validation rows
to block; the threshold is then set halfway (in log-odds) between the lowest blocked score and the highest
allowed one:

- ``best_f1`` (default): the threshold with the best fraud-class F1.
- ``min_precision``: the lowest threshold whose precision is >= target (most fraud caught while at least
  `target` of the blocks are fraud).
- ``max_false_block_rate``: the lowest threshold whose false-block rate (genuine blocked / genuine) is
  <= target (most fraud caught while annoying at most that share of genuine customers).

Review policies (setting `review_policy`, target in `review_target`) pick a second, lower threshold on the same
window: scores between it and the block threshold get `review` (a step-up check) when the scorer's review tier
is on. Placed halfway in log-odds like the block threshold:

- ``min_recall`` (default): the highest review threshold at which review and block together catch at least
  `target` of the fraud (fewest reviews for that recall). None when blocking alone already does.
- ``max_review_rate``: the lowest review threshold that sends at most `target` of all transactions to review
  (most fraud caught for a review desk of that size).
- ``none``: no review threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from core.errors import DataError
from training.errors import TrainingError

ThresholdPolicy = Literal["best_f1", "min_precision", "max_false_block_rate"]
THRESHOLD_POLICIES: tuple[str, ...] = get_args(ThresholdPolicy)
ReviewPolicy = Literal["none", "min_recall", "max_review_rate"]
REVIEW_POLICIES: tuple[str, ...] = get_args(ReviewPolicy)


@dataclass(frozen=True)
class Curve:
    """Counts at every distinct score, from the highest threshold down."""

    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    positives: int
    negatives: int

    @property
    def precision(self) -> np.ndarray:
        return self.true_positives / np.maximum(self.true_positives + self.false_positives, 1)

    @property
    def recall(self) -> np.ndarray:
        return self.true_positives / max(self.positives, 1)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)

    @property
    def false_block_rate(self) -> np.ndarray:
        return self.false_positives / max(self.negatives, 1)


def curve(labels: np.ndarray, scores: np.ndarray) -> Curve:
    """The block/allow counts at each distinct score used as threshold (block when score >= threshold)."""
    order = np.argsort(-scores, kind="mergesort")
    ranked, truth = scores[order], labels[order].astype(np.int64)
    last_of_run = np.r_[np.nonzero(np.diff(ranked))[0], len(ranked) - 1]
    positives = int(truth.sum())
    return Curve(
        thresholds=ranked[last_of_run],
        true_positives=np.cumsum(truth)[last_of_run],
        false_positives=np.cumsum(1 - truth)[last_of_run],
        positives=positives,
        negatives=len(truth) - positives,
    )


def choose_threshold(labels: np.ndarray, scores: np.ndarray, policy: str, target: float) -> float:
    """The block threshold the policy picks on these (validation) scores."""
    if len(scores) == 0 or labels.sum() == 0:
        raise DataError("cannot choose a threshold on a window with no fraud")
    c = curve(labels, scores)
    if policy == "best_f1":
        return _between(c.thresholds, int(np.argmax(c.f1)))
    if policy == "min_precision":
        ok = np.nonzero(c.precision >= target)[0]
        what = f"precision >= {target}"
    elif policy == "max_false_block_rate":
        ok = np.nonzero(c.false_block_rate <= target)[0]
        what = f"false-block rate <= {target}"
    else:
        raise TrainingError(f"unknown threshold policy {policy!r}; expected one of {', '.join(THRESHOLD_POLICIES)}")
    if not len(ok):
        raise TrainingError(f"no threshold reaches {what} on the validation window")
    # Recall only grows as the threshold falls, so the last threshold that meets the target catches most.
    return _between(c.thresholds, int(ok[-1]))


def choose_review_threshold(
    labels: np.ndarray, scores: np.ndarray, block_threshold: float, policy: str, target: float
) -> float | None:
    """The review threshold the policy picks on these (validation) scores; None when it leaves no review band.

    Always below `block_threshold`: review is for `review_threshold <= score < block_threshold`.
    """
    if policy == "none":
        return None
    if policy not in REVIEW_POLICIES:
        raise TrainingError(f"unknown review policy {policy!r}; expected one of {', '.join(REVIEW_POLICIES)}")
    if len(scores) == 0 or labels.sum() == 0:
        raise DataError("cannot choose a review threshold on a window with no fraud")
    c = curve(labels, scores)
    below = c.thresholds < block_threshold  # cuts that flag more than blocking does
    if policy == "min_recall":
        if float(labels[scores >= block_threshold].sum()) / c.positives >= target:
            return None  # blocking alone reaches the recall: nothing to review
        ok = np.nonzero(below & (c.recall >= target))[0]
        chosen = int(ok[0]) if len(ok) else None  # the highest such cut: fewest reviews
    else:
        blocked = int((scores >= block_threshold).sum())
        review_share = (c.true_positives + c.false_positives - blocked) / len(scores)
        ok = np.nonzero(below & (review_share <= target))[0]
        chosen = int(ok[-1]) if len(ok) else None  # the lowest cut within the desk's capacity
    if chosen is None:
        return None
    value = _between(c.thresholds, chosen)
    return value if 0 < value < block_threshold else None


@dataclass(frozen=True)
class ReviewBand:
    """What a review threshold does on one labelled window, beside the block threshold."""

    review_threshold: float
    review_rate: float  # share of all transactions sent to review
    recall_with_review: float  # share of fraud reviewed or blocked
    review_precision: float  # share of reviewed transactions that are fraud


def review_band(labels: np.ndarray, scores: np.ndarray, block_threshold: float, review_threshold: float) -> ReviewBand:
    fraud = labels.astype(bool)
    reviewed = (scores >= review_threshold) & (scores < block_threshold)
    flagged = scores >= review_threshold
    return ReviewBand(
        review_threshold=float(review_threshold),
        review_rate=float(reviewed.mean()) if len(scores) else 0.0,
        recall_with_review=float((flagged & fraud).sum() / fraud.sum()) if fraud.any() else 0.0,
        review_precision=float((reviewed & fraud).sum() / reviewed.sum()) if reviewed.any() else 0.0,
    )


def _between(thresholds: np.ndarray, chosen: int) -> float:
    """A cut halfway (in log-odds) between the chosen score and the next lower one.

    It blocks exactly the same validation rows as the chosen score itself, but leaves a margin on both
    sides for unseen data instead of sitting on the last blocked row (often a hair below 1.0).
    """
    upper = float(thresholds[chosen])
    if chosen + 1 >= len(thresholds):
        return upper
    lower = float(thresholds[chosen + 1])
    low, high = _logit(lower), _logit(upper)
    middle = float(1 / (1 + np.exp(-(low + high) / 2)))
    # Rounding near 0 or 1 must not move the cut onto or past either score.
    return middle if lower < middle <= upper else upper


def _logit(p: float) -> float:
    p = min(max(p, 1e-15), 1 - 1e-15)
    return float(np.log(p / (1 - p)))


@dataclass(frozen=True)
class Metrics:
    """What a fraud team reads off a model on one labelled window, at one threshold."""

    n: int
    frauds: int
    auprc: float
    roc_auc: float
    precision: float
    recall: float
    f1: float
    threshold: float
    false_block_rate: float
    fraud_amount_recall: float
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> dict[str, float | int]:
        """The metrics that are logged to MLflow and printed (counts left out)."""
        keys = (
            "auprc",
            "roc_auc",
            "precision",
            "recall",
            "f1",
            "false_block_rate",
            "fraud_amount_recall",
            "threshold",
        )
        return {k: getattr(self, k) for k in keys}


def measure(labels: np.ndarray, scores: np.ndarray, amounts: np.ndarray, threshold: float) -> Metrics:
    """Metrics of scores against labels, blocking at `threshold`."""
    labels = labels.astype(np.int64)
    n, frauds = len(labels), int(labels.sum())
    if n == 0:
        raise DataError("cannot measure a model on no rows")
    blocked = scores >= threshold
    fraud = labels == 1
    tp = int((blocked & fraud).sum())
    fp = int((blocked & ~fraud).sum())
    fn = frauds - tp
    tn = n - frauds - fp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / frauds if frauds else 0.0
    both_classes = 0 < frauds < n
    fraud_money = float(amounts[fraud].sum())
    return Metrics(
        n=n,
        frauds=frauds,
        auprc=float(average_precision_score(labels, scores)) if both_classes else float("nan"),
        roc_auc=float(roc_auc_score(labels, scores)) if both_classes else float("nan"),
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        threshold=float(threshold),
        false_block_rate=fp / (n - frauds) if n - frauds else 0.0,
        fraud_amount_recall=float(amounts[fraud & blocked].sum()) / fraud_money if fraud_money else 0.0,
        true_positives=tp,
        false_positives=fp,
        true_negatives=tn,
        false_negatives=fn,
    )
