"""The verdict MoMo Guard answers a transaction with: one definition, which the scorer serialises as it is.

`Verdict` is a plain slotted dataclass so that the scorer's hot path builds and serialises it (orjson reads
dataclasses natively) at about a microsecond a verdict; `VERDICT` (a pydantic TypeAdapter over the same class)
validates verdict bytes and writes the published JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

import orjson
from pydantic import Field, TypeAdapter

Decision = Literal["block", "allow"]


@dataclass(slots=True)
class Reason:
    """One feature that pushed the score, with its signed contribution (log-odds)."""

    feature: Annotated[str, Field(min_length=1)]
    contribution: Annotated[float, Field(allow_inf_nan=False)]


@dataclass(slots=True)
class Verdict:
    """The block/allow answer to one transaction, with the model that gave it and why."""

    tx_id: Annotated[str, Field(min_length=1, max_length=64)]
    decision: Decision
    score: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Fraud probability.")]
    threshold: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Block when score >= this.")]
    model_name: Annotated[str, Field(min_length=1)]
    model_version: Annotated[str, Field(min_length=1)]
    scored_at: Annotated[datetime, Field(description="When the verdict was made (UTC).")]
    reasons: Annotated[
        list[Reason],
        Field(
            max_length=10,
            description="Features that pushed the score most (SHAP, log-odds), for verdicts scoring at least "
            "MOMOGUARD_EXPLAIN_MIN_SCORE or blocked; empty for the rest.",
        ),
    ] = field(default_factory=list)
    event_time: Annotated[datetime | None, Field(description="The transaction's event_time, echoed.")] = None


VERDICT: TypeAdapter[Verdict] = TypeAdapter(Verdict)


def verdict_bytes(verdict: Verdict) -> bytes:
    """A verdict as it goes on the wire."""
    return orjson.dumps(verdict)


def parse_verdict(raw: bytes | str) -> Verdict:
    """Verdict bytes read back and checked against the definition (pydantic's ValidationError if they are not)."""
    return VERDICT.validate_json(raw)
