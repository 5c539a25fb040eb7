"""The artifacts of a training run: PR and threshold curves, confusion matrix, importance, model card."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from matplotlib.figure import Figure

from training.quality import Curve, Metrics, ReviewBand, curve

_MAX_POINTS = 2000  # a curve drawn from more points than this looks the same and saves slowly


@dataclass(frozen=True)
class CardFacts:
    """What the model card says beyond the metrics."""

    model_name: str
    feature_set: str
    feature_names: list[str]
    data_source: str
    windows: list[str]
    threshold_policy: str
    threshold_target: float
    params: dict[str, Any]
    best_iteration: int
    trials: int
    validation_auprc: float
    training_seconds: float
    genuine_fraction: float
    test: Metrics
    other_feature_set: tuple[str, Metrics] | None = None
    review_policy: str = "none"
    review_target: float = 0.0
    review: ReviewBand | None = None  # on the test window


def write_all(
    out: Path,
    *,
    booster: lgb.Booster,
    validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    facts: CardFacts,
) -> list[Path]:
    """Write every artifact into `out` and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    test_curve = curve(*test)
    paths = [
        pr_curve(out / "pr_curve.png", test_curve, facts.test),
        threshold_curve(out / "threshold_curve.png", curve(*validation), facts.test.threshold),
        *confusion_matrix(out, facts.test),
        *feature_importance(out, booster),
    ]
    card = out / "model_card.md"
    card.write_text(model_card(facts, booster))
    return [*paths, card]


def _thin(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, _MAX_POINTS)).astype(np.int64))


def pr_curve(path: Path, c: Curve, at: Metrics) -> Path:
    """Precision against recall on the test window, with the operating point."""
    figure = Figure(figsize=(6, 5))
    ax = figure.subplots()
    keep = _thin(len(c.thresholds))
    ax.plot(c.recall[keep], c.precision[keep], lw=1.5, label=f"AUPRC {at.auprc:.4f}")
    ax.scatter([at.recall], [at.precision], color="crimson", zorder=3, label=f"threshold {at.threshold:.3f}")
    ax.set(
        xlabel="recall (fraud caught)",
        ylabel="precision (blocks that are fraud)",
        title="Test window: PR curve",
    )
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def threshold_curve(path: Path, c: Curve, threshold: float) -> Path:
    """Precision, recall, F1 and false-block rate against the threshold on the validation window."""
    figure = Figure(figsize=(7, 5))
    ax = figure.subplots()
    keep = _thin(len(c.thresholds))
    t = c.thresholds[keep]
    ax.plot(t, c.precision[keep], label="precision")
    ax.plot(t, c.recall[keep], label="recall")
    ax.plot(t, c.f1[keep], label="F1")
    ax.axvline(threshold, color="crimson", lw=1, label=f"chosen {threshold:.3f}")
    ax.set(xlabel="threshold (block when score >= threshold)", title="Validation window: metrics by threshold")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    # The false-block rate lives on another scale (a fraction of a percent matters), hence its own axis.
    rate = ax.twinx()
    rate.plot(t, c.false_block_rate[keep] * 100, color="grey", ls="--", label="false-block rate (%)")
    rate.set_ylabel("false-block rate (% of genuine)")
    rate.set_ylim(0, max(float(c.false_block_rate[keep].max()) * 100 * 1.05, 0.01))
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = rate.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, loc="center right")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def confusion_matrix(out: Path, m: Metrics) -> list[Path]:
    """The test-window confusion matrix as JSON and as a picture."""
    cells = np.array([[m.true_negatives, m.false_positives], [m.false_negatives, m.true_positives]])
    as_json = out / "confusion_matrix.json"
    as_json.write_text(
        json.dumps(
            {
                "threshold": m.threshold,
                "rows": "actual genuine, fraud",
                "columns": "allowed, blocked",
                "matrix": cells.tolist(),
            },
            indent=2,
        )
    )
    figure = Figure(figsize=(4.5, 4))
    ax = figure.subplots()
    ax.imshow(np.log1p(cells), cmap="Blues")
    for (i, j), value in np.ndenumerate(cells):
        ax.text(j, i, f"{value:,}", ha="center", va="center", fontsize=12)
    ax.set_xticks([0, 1], ["allowed", "blocked"])
    ax.set_yticks([0, 1], ["genuine", "fraud"])
    ax.set_title(f"Test window at threshold {m.threshold:.3f}")
    picture = out / "confusion_matrix.png"
    figure.savefig(picture, dpi=110, bbox_inches="tight")
    return [as_json, picture]


def importance(booster: lgb.Booster) -> list[dict[str, Any]]:
    """Gain and split importance per feature, highest gain first."""
    gain = booster.feature_importance(importance_type="gain")
    split = booster.feature_importance(importance_type="split")
    total = float(gain.sum()) or 1.0
    rows = [
        {"feature": name, "gain_share": float(g) / total, "splits": int(s)}
        for name, g, s in zip(booster.feature_name(), gain, split, strict=True)
    ]
    return sorted(rows, key=lambda r: r["gain_share"], reverse=True)


def feature_importance(out: Path, booster: lgb.Booster) -> list[Path]:
    """Feature importance as JSON and as a bar chart."""
    rows = importance(booster)
    as_json = out / "feature_importance.json"
    as_json.write_text(json.dumps(rows, indent=2))
    figure = Figure(figsize=(6, 0.3 * len(rows) + 1))
    ax = figure.subplots()
    ax.barh([r["feature"] for r in rows][::-1], [r["gain_share"] for r in rows][::-1])
    ax.set(xlabel="share of total gain", title="Feature importance")
    picture = out / "feature_importance.png"
    figure.savefig(picture, dpi=110, bbox_inches="tight")
    return [as_json, picture]


def model_card(f: CardFacts, booster: lgb.Booster) -> str:
    """The markdown model card."""
    m = f.test
    lines = [
        f"# Model card: {f.model_name}",
        "",
        "LightGBM binary classifier scoring PaySim mobile-money transactions for fraud "
        "(block when score >= threshold).",
        "",
        "## Data",
        f"- Source: {f.data_source}",
        *(f"- {w}" for w in f.windows),
        "- Windows are cut on `step` (time), never at random; the test window comes last.",
        "",
        "## Features",
        f"- Feature set: `{f.feature_set}` ({len(f.feature_names)} features): "
        + ", ".join(f"`{n}`" for n in f.feature_names),
        "- `pre_settlement` uses only what is known before the transaction settles, so it can block in real"
        " time; `post_settlement` adds the new balances and balance errors, known only afterwards.",
        "",
        "## Test-window metrics",
        "| metric | value |",
        "|---|---|",
        f"| rows / frauds | {m.n:,} / {m.frauds:,} |",
        f"| AUPRC | {m.auprc:.5f} |",
        f"| ROC AUC | {m.roc_auc:.5f} |",
        f"| precision (fraud) | {m.precision:.4f} |",
        f"| recall (fraud) | {m.recall:.4f} |",
        f"| F1 (fraud) | {m.f1:.4f} |",
        f"| false-block rate | {m.false_block_rate:.6f} ({m.false_positives:,} genuine blocked) |",
        f"| fraud-amount recall | {m.fraud_amount_recall:.4f} |",
        "",
    ]
    if f.other_feature_set is not None:
        other_name, o = f.other_feature_set
        lines += [
            "## Both feature sets on the same test window",
            "The other feature set is trained on the same windows with a short search of its own.",
            "",
            "| feature set | AUPRC | ROC AUC | precision | recall | F1 | false-block rate | fraud-amount recall |",
            "|---|---|---|---|---|---|---|---|",
            *(
                f"| `{name}`{' (this model)' if name == f.feature_set else ''} "
                f"| {x.auprc:.5f} | {x.roc_auc:.5f} | "
                f"{x.precision:.4f} | {x.recall:.4f} | {x.f1:.4f} | {x.false_block_rate:.6f} | "
                f"{x.fraud_amount_recall:.4f} |"
                for name, x in sorted([(f.feature_set, m), (other_name, o)])
            ),
            "",
        ]
    lines += [
        "## Threshold",
        f"- {m.threshold:.6f}, chosen on the validation window by policy `{f.threshold_policy}`"
        + (f" (target {f.threshold_target})" if f.threshold_policy != "best_f1" else "")
        + ".",
        *_review_lines(f),
        "",
        "## Training",
        f"- Hyperparameter search: {f.trials} trial(s), best validation AUPRC {f.validation_auprc:.5f}, "
        f"{f.best_iteration} boosting rounds (early stopping on validation).",
        f"- Train rows: every fraud and {f.genuine_fraction:.0%} of the genuine rows of the train window "
        f"(weighted by {1 / f.genuine_fraction:.4g}); validation and test windows are used whole.",
        f"- Training time (search included): {f.training_seconds:.1f} s.",
        "- Parameters: " + ", ".join(f"`{k}={_short(v)}`" for k, v in sorted(f.params.items())),
        "",
        "## Most important features (gain share)",
        *(f"- `{r['feature']}`: {r['gain_share']:.3f}" for r in importance(booster)[:8]),
        "",
    ]
    return "\n".join(lines)


def _review_lines(f: CardFacts) -> list[str]:
    if f.review_policy == "none":
        return ["- Review threshold: none (review policy `none`)."]
    if f.review is None:
        return [
            f"- Review threshold: none: policy `{f.review_policy}` (target {f.review_target}) leaves no band "
            "below the block threshold on the validation window."
        ]
    r = f.review
    return [
        f"- Review threshold {r.review_threshold:.6f}, chosen on the validation window by policy "
        f"`{f.review_policy}` (target {f.review_target}): with the scorer's review tier on, scores from it up to "
        "the block threshold get `review`.",
        f"- On the test window: {r.review_rate:.4%} of transactions to review, {r.review_precision:.4f} of them "
        f"fraud; fraud reviewed or blocked {r.recall_with_review:.4f}.",
    ]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
