"""The verdict MoMo Guard answers a transaction with."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["block", "allow"]


class Reason(BaseModel):
    """One feature that pushed the score, with its signed contribution (log-odds)."""

    model_config = ConfigDict(frozen=True)

    feature: str = Field(min_length=1)
    contribution: float = Field(allow_inf_nan=False)


class Verdict(BaseModel):
    """The block/allow answer to one transaction, with the model that gave it and why."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    tx_id: str = Field(min_length=1, max_length=64)
    decision: Decision
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Fraud probability.")
    threshold: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Block when score >= this.")
    model_name: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    reasons: list[Reason] = Field(
        default_factory=list,
        max_length=10,
        description="Features that pushed the score most (SHAP, log-odds), for verdicts scoring at least "
        "MOMOGUARD_EXPLAIN_MIN_SCORE or blocked; empty for the rest.",
    )
    event_time: datetime | None = Field(None, description="The transaction's event_time, echoed.")
    scored_at: datetime = Field(description="When the verdict was made (UTC).")
