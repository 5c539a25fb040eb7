"""The promotion rule: does a challenger replace the champion? A pure function of their test metrics.

Both models are measured on the same test window. The challenger takes the `champion` alias unless its
AUPRC is lower than the champion's by more than `promotion_auprc_margin`, or its fraud-amount recall is
lower by more than `promotion_amount_recall_margin`. With no champion yet, the challenger needs an AUPRC
of at least `promotion_auprc_floor`. Margins allow a retrain on fresh data that is a hair worse by noise.

With `promotion_requires_shadow`, a challenger that passes becomes the `challenger` alias instead, and takes the
champion's place only once `decide_live` says so on the live traffic both scored (training/live.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from training.quality import Metrics

if TYPE_CHECKING:
    from core.settings import Settings
    from training.live import LiveComparison


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


@dataclass(frozen=True)
class LiveDecision:
    """The live-shadow gate's answer for a challenger: promote, reject, or wait for more labelled traffic."""

    outcome: Literal["promote", "reject", "wait"]
    reason: str


def live_gate(settings: Settings, live: LiveComparison) -> LiveDecision:
    """`decide_live` with the operator's settings: the live gate the flow applies and `models compare` shows."""
    return decide_live(
        live,
        min_frauds=settings.shadow_min_frauds,
        auprc_margin=settings.promotion_auprc_margin,
        amount_recall_margin=settings.promotion_amount_recall_margin,
    )


def decide_live(
    live: LiveComparison, *, min_frauds: int, auprc_margin: float, amount_recall_margin: float
) -> LiveDecision:
    """The same rule as offline, on the live traffic both models scored and analysts labelled.

    Waits until the challenger has shadowed `min_frauds` labelled frauds (and some labelled genuine traffic);
    then the challenger is promoted unless its live AUPRC trails the champion's by more than `auprc_margin` or
    its live fraud-amount recall by more than `amount_recall_margin`, and rejected otherwise.
    """
    ours, theirs = live.challenger_figures, live.champion
    if live.labelled_fraud < min_frauds or live.labelled_fraud == live.labelled:
        return LiveDecision(
            "wait",
            f"challenger v{live.challenger} has shadowed {live.labelled_fraud} labelled fraud(s) and "
            f"{live.labelled - live.labelled_fraud} labelled genuine transaction(s); the live gate needs "
            f"{min_frauds} frauds and some genuine ones",
        )
    auprc_drop = theirs.auprc - ours.auprc
    recall_drop = theirs.fraud_amount_recall - ours.fraud_amount_recall
    on = f"on {live.labelled:,} labelled live transactions ({live.labelled_fraud:,} fraud)"
    if auprc_drop > auprc_margin:
        return LiveDecision(
            "reject",
            f"live AUPRC {ours.auprc:.4f} is {auprc_drop:.4f} below the champion's ({theirs.auprc:.4f}) {on}; "
            f"allowed margin {auprc_margin}",
        )
    if recall_drop > amount_recall_margin:
        return LiveDecision(
            "reject",
            f"live fraud-amount recall {ours.fraud_amount_recall:.4f} is {recall_drop:.4f} below the champion's "
            f"({theirs.fraud_amount_recall:.4f}) {on}; allowed margin {amount_recall_margin}",
        )
    return LiveDecision(
        "promote",
        f"live AUPRC {ours.auprc:.4f} vs champion {theirs.auprc:.4f}, fraud-amount recall "
        f"{ours.fraud_amount_recall:.4f} vs {theirs.fraud_amount_recall:.4f} {on}: within margins",
    )
