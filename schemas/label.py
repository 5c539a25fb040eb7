"""A label: what a transaction turned out to be, and who said so. One JSON message on the `labels` topic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.transaction import ID_MAX_LENGTH

LabelSource = Literal["analyst", "chargeback", "customer_report"]
LABEL_SOURCES: tuple[str, ...] = ("analyst", "chargeback", "customer_report")
NOTE_MAX_LENGTH = 500


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Label(BaseModel):
    """Fraud or genuine, for one transaction by its tx_id; the latest label of a tx_id is the one that counts."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    tx_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, description="The transaction's tx_id.")
    is_fraud: bool = Field(description="True: fraud; false: genuine.")
    source: LabelSource = Field(description="Who says so: an analyst, a chargeback, a customer's report.")
    labelled_at: Annotated[datetime, AfterValidator(_utc)] = Field(description="When it was said (UTC).")
    note: str | None = Field(None, max_length=NOTE_MAX_LENGTH, description="Free text, for the next analyst.")


def label_bytes(label: Label) -> bytes:
    """A label as it goes on the wire."""
    return orjson.dumps(label.model_dump(mode="json"))


def parse_label(raw: bytes | str) -> Label:
    """Label bytes read back and checked (pydantic's ValidationError if they are not a label)."""
    return Label.model_validate_json(raw)
