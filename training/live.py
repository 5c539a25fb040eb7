"""Champion against challenger on live traffic: the rows the challenger shadowed, joined with analysts' labels.

What `momoguard models compare` prints and the live-shadow promotion gate judges by. Figures count the labelled
rows only (precision, recall, fraud-amount recall, false-block rate, AUPRC), from the decisions each model made
at the time (read from the log, never recomputed); agreement counts every shadowed row. Labels are not a random
sample: analysts label what looked suspicious, so read the live figures as a comparison of the two models on
the same rows, not as either model's true rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score

import registry
from core.settings import Settings
from feedback.dataset import shadow_rows
from registry.errors import ModelNotFoundError


@dataclass(frozen=True)
class LiveFigures:
    """One model's figures on the labelled shadowed rows."""

    versions: str  # the version(s) that decided these rows (a champion may have changed meanwhile)
    blocked: int
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int
    precision: float
    recall: float
    fraud_amount_recall: float
    false_block_rate: float
    auprc: float  # NaN without both classes among the labelled rows


@dataclass(frozen=True)
class LiveComparison:
    """Champion and challenger on the same live rows."""

    model_name: str
    challenger: str
    since: datetime | None  # the first row the challenger shadowed
    rows: int  # shadowed rows (de-duplicated by tx_id)
    labelled: int
    labelled_fraud: int
    agreement: float | None  # share of shadowed rows both decided alike
    disagreements: int
    champion: LiveFigures
    challenger_figures: LiveFigures

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = self.since.isoformat() if self.since else None
        out["challenger_version"] = out.pop("challenger")
        out["challenger"] = out.pop("challenger_figures")
        return out


def compare_live(settings: Settings, challenger: str | None = None) -> LiveComparison:
    """The comparison for `challenger` (default: the current `challenger` alias)."""
    version = challenger or registry.challenger_version(settings)
    if version is None:
        raise ModelNotFoundError(
            f"model {settings.model_name!r} has no challenger: set one with `momoguard models challenger VERSION`"
        )
    return comparison(settings.model_name, version, shadow_rows(settings, version))


def comparison(model_name: str, challenger: str, rows: pl.DataFrame) -> LiveComparison:
    """The comparison of shadowed rows (feedback.dataset.shadow_rows' columns)."""
    n = rows.height
    champion_blocks = (rows["decision"] == "block").to_numpy() if n else np.empty(0, dtype=bool)
    challenger_blocks = (rows["shadow_decision"] == "block").to_numpy() if n else np.empty(0, dtype=bool)
    disagreements = int(np.count_nonzero(champion_blocks != challenger_blocks))
    labelled = rows.filter(pl.col("is_fraud").is_not_null()) if n else rows
    truth = labelled["is_fraud"].to_numpy().astype(bool) if labelled.height else np.empty(0, dtype=bool)
    amounts = labelled["amount"].to_numpy() if labelled.height else np.empty(0)
    versions = ", ".join(sorted(set(rows["model_version"].to_list()), key=_version_order)) if n else ""

    def figures(which: str, decision: str, score: str) -> LiveFigures:
        blocked = (labelled[decision] == "block").to_numpy() if labelled.height else np.empty(0, dtype=bool)
        scores = labelled[score].to_numpy() if labelled.height else np.empty(0)
        return _figures(which, truth, blocked, scores, amounts)

    return LiveComparison(
        model_name=model_name,
        challenger=challenger,
        since=rows["scored_at"].min() if n else None,  # type: ignore[arg-type]
        rows=n,
        labelled=labelled.height,
        labelled_fraud=int(truth.sum()),
        agreement=1 - disagreements / n if n else None,
        disagreements=disagreements,
        champion=figures(versions, "decision", "score"),
        challenger_figures=figures(challenger, "shadow_decision", "shadow_score"),
    )


def _figures(
    versions: str, truth: np.ndarray, blocked: np.ndarray, scores: np.ndarray, amounts: np.ndarray
) -> LiveFigures:
    tp = int(np.count_nonzero(blocked & truth))
    fp = int(np.count_nonzero(blocked & ~truth))
    fn = int(np.count_nonzero(~blocked & truth))
    tn = len(truth) - tp - fp - fn
    fraud_money = float(amounts[truth].sum())
    both = 0 < int(truth.sum()) < len(truth)
    return LiveFigures(
        versions=versions,
        blocked=tp + fp,
        true_positives=tp,
        false_positives=fp,
        true_negatives=tn,
        false_negatives=fn,
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
        fraud_amount_recall=float(amounts[truth & blocked].sum()) / fraud_money if fraud_money else 0.0,
        false_block_rate=fp / (fp + tn) if fp + tn else 0.0,
        auprc=float(average_precision_score(truth, scores)) if both else float("nan"),
    )


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)
