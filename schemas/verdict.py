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

Decision = Literal["allow", "review", "block"]
# What decided: the model's score against the version's thresholds, or an entry of the desk's lists.
DecidedBy = Literal["model", "list"]
ListAction = Literal["block", "allow", "review"]
# Which side of a transaction a list entry covers: the originating account, the destination, or either.
Direction = Literal["orig", "dest", "both"]
Side = Literal["orig", "dest"]

REASON_CODE_PATTERN = r"^[A-Z][A-Z0-9_]*$"


@dataclass(slots=True)
class Reason:
    """One feature that pushed the score, its signed contribution (log-odds), its stable code and plain text."""

    feature: Annotated[str, Field(min_length=1)]
    contribution: Annotated[float, Field(allow_inf_nan=False)]
    code: Annotated[
        str,
        Field(
            pattern=REASON_CODE_PATTERN,
            description="Stable reason code: the feature, then _RAISES (it pushed the score up) or _LOWERS.",
        ),
    ]
    text: Annotated[str, Field(min_length=1, description="The code's plain-language text, from the catalog.")]


@dataclass(slots=True)
class ListHit:
    """The list entry that decided a verdict, and the side of the transaction it matched."""

    account: Annotated[str, Field(min_length=1, max_length=64)]
    side: Annotated[Side, Field(description="The side of this transaction the entry matched.")]
    direction: Annotated[Direction, Field(description="The sides the entry covers.")]
    action: ListAction
    reason: Annotated[str, Field(min_length=1)]
    added_by: Annotated[str, Field(min_length=1)]
    added_at: datetime
    expires_at: datetime | None = None


@dataclass(slots=True)
class Verdict:
    """The allow/review/block answer to one transaction, with what decided it and why."""

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
    review_threshold: Annotated[
        float | None,
        Field(
            gt=0.0,
            le=1.0,
            allow_inf_nan=False,
            description="Review when review_threshold <= score < threshold; null when the review tier is off.",
        ),
    ] = None
    decided_by: Annotated[
        DecidedBy, Field(description="`model` (the score and thresholds) or `list` (list_entry decided).")
    ] = "model"
    list_entry: Annotated[ListHit | None, Field(description="The list entry that decided, if one did.")] = None
    late: Annotated[
        bool,
        Field(description="Made later than the transaction's event time + MOMOGUARD_VERDICT_DEADLINE_MS."),
    ] = False


VERDICT: TypeAdapter[Verdict] = TypeAdapter(Verdict)


def verdict_bytes(verdict: Verdict) -> bytes:
    """A verdict as it goes on the wire."""
    return orjson.dumps(verdict)


def parse_verdict(raw: bytes | str) -> Verdict:
    """Verdict bytes read back and checked against the definition (pydantic's ValidationError if they are not)."""
    return VERDICT.validate_json(raw)
