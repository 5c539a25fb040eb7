"""The promotion rule: does a challenger replace the champion? A pure function of their test metrics.

Both models are measured on the same test window. The challenger takes the `champion` alias unless its
AUPRC is lower than the champion's by more than `promotion_auprc_margin`, or its fraud-amount recall is
lower by more than `promotion_amount_recall_margin`. With no champion yet, the challenger needs an AUPRC
of at least `promotion_auprc_floor`. Margins allow a retrain on fresh data that is a hair worse by noise.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.quality import Metrics


@dataclass(frozen=True)
class PromotionDecision:
    """Promote or not, and why, in one line."""

    promote: bool
    reason: str


def decide(
    challenger: Metrics,
    champion: Metrics | None,
    *,
    auprc_margin: float,
    amount_recall_margin: float,
    auprc_floor: float,
    champion_version: str | None = None,
) -> PromotionDecision:
    """Apply the promotion rule."""
    if champion is None:
        if challenger.auprc >= auprc_floor:
            return PromotionDecision(True, f"first model: test AUPRC {challenger.auprc:.4f} >= floor {auprc_floor}")
        return PromotionDecision(False, f"first model: test AUPRC {challenger.auprc:.4f} below floor {auprc_floor}")
    versus = f"champion v{champion_version}" if champion_version else "champion"
    auprc_drop = champion.auprc - challenger.auprc
    recall_drop = champion.fraud_amount_recall - challenger.fraud_amount_recall
    if auprc_drop > auprc_margin:
        return PromotionDecision(
            False,
            f"test AUPRC {challenger.auprc:.4f} is {auprc_drop:.4f} below {versus} ({champion.auprc:.4f}); "
            f"allowed margin {auprc_margin}",
        )
    if recall_drop > amount_recall_margin:
        return PromotionDecision(
            False,
            f"fraud-amount recall {challenger.fraud_amount_recall:.4f} is {recall_drop:.4f} below {versus} "
            f"({champion.fraud_amount_recall:.4f}); allowed margin {amount_recall_margin}",
        )
    return PromotionDecision(
        True,
        f"test AUPRC {challenger.auprc:.4f} vs {versus} {champion.auprc:.4f}, fraud-amount recall "
        f"{challenger.fraud_amount_recall:.4f} vs {champion.fraud_amount_recall:.4f}: within margins",
    )
