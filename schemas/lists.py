"""An entry of the fraud desk's lists, as it sits on the compacted topic `momoguard.lists` (keyed by account).

One entry per account: a later record for the same key replaces it, a tombstone (null value) removes it. The
JSON Schema is `schemas/list_entry.schema.json`, for tools that write entries without `momoguard lists`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.transaction import ID_MAX_LENGTH
from schemas.verdict import Direction, ListAction

REASON_MAX_LENGTH = 500
NAME_MAX_LENGTH = 64


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class ListEntry(BaseModel):
    """Force a decision for an account's transactions: as sender, as recipient, or both, until it expires."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    account: str = Field(min_length=1, max_length=ID_MAX_LENGTH, description="The account id (the record's key).")
    action: ListAction = Field(description="The decision forced on the account's transactions.")
    direction: Direction = Field(
        "both", description="orig: transactions it sends; dest: transactions it receives; both: either."
    )
    reason: str = Field(min_length=1, max_length=REASON_MAX_LENGTH, description="Why, for the desk and the verdict.")
    added_by: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, description="Who added the entry.")
    added_at: UtcTime = Field(description="When it was added (UTC).")
    expires_at: Annotated[UtcTime | None, Field(description="When it stops applying (UTC); null: never.")] = None

    def in_force(self, at: datetime) -> bool:
        return self.expires_at is None or at < self.expires_at
