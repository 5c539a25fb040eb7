"""The transaction an operator publishes: one PaySim row plus an id and a publish time."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError


class TxType(StrEnum):
    """PaySim's five transaction types."""

    CASH_IN = "CASH_IN"
    CASH_OUT = "CASH_OUT"
    DEBIT = "DEBIT"
    PAYMENT = "PAYMENT"
    TRANSFER = "TRANSFER"


# The type names, in TxType's order: a type's position is its code in the generator's arrays.
TX_TYPES: tuple[str, ...] = tuple(t.value for t in TxType)

# PaySim column names, in the order of the Kaggle CSV header.
PAYSIM_COLUMNS: tuple[str, ...] = (
    "step",
    "type",
    "amount",
    "nameOrig",
    "oldbalanceOrg",
    "newbalanceOrig",
    "nameDest",
    "oldbalanceDest",
    "newbalanceDest",
    "isFraud",
    "isFlaggedFraud",
)

# Bounds of what the features and the model can take. A step is an hour since the start of the data (a
# month is 743); a million hours is over a century, and fits the Int32 step column of the frames. Money is
# bounded at a quadrillion: beyond any wallet in any currency, and well inside the integers a float64 holds
# exactly (2**53), so sums and differences of two amounts stay exact to the cent.
MAX_STEP = 1_000_000
MAX_MONEY = 1e15
# Event times outside these years are a producer's bug (seconds sent as milliseconds, a zero date).
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(2100, 1, 1, tzinfo=UTC)
ID_MAX_LENGTH = 64
# The same bounds in seconds since the epoch: an aware datetime is checked against them by its timestamp, which
# asks its tzinfo for the offset once (comparing datetimes asks pydantic's TzInfo twice per bound, ~2 us a message).
_EARLIEST_S = EARLIEST_EVENT_TIME.timestamp()
_LATEST_S = LATEST_EVENT_TIME.timestamp()


def _utc_in_range(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # a time without an offset is taken as UTC, never as the server's local time
        value = value.replace(tzinfo=UTC)
    # Exact to the microsecond: a float's resolution near 2100 is under half a microsecond.
    if not _EARLIEST_S <= value.timestamp() < _LATEST_S:
        raise ValueError(
            f"event_time {value.isoformat()} is outside {EARLIEST_EVENT_TIME.year}-{LATEST_EVENT_TIME.year - 1}"
        )
    return value


def _seconds_not_milliseconds(value: object) -> object:
    # pydantic reads a number above 2e10 as milliseconds; the contract says seconds, so such a number is out of
    # range rather than silently rescaled.
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not _EARLIEST_S <= value < _LATEST_S:
            raise PydanticCustomError(
                "event_time_range", "event_time in seconds since the epoch should be between 2000 and 2099"
            )
    return value


EventTime = Annotated[datetime | None, BeforeValidator(_seconds_not_milliseconds), AfterValidator(_utc_in_range)]


def _not_text_or_bool(value: object) -> object:
    # JSON Schema's "integer" admits 1.0, so integral floats pass; a string or a boolean never does.
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a JSON integer, not a string or boolean")
    return value


WholeNumber = Annotated[int, BeforeValidator(_not_text_or_bool)]
Label = Annotated[
    int, Field(ge=0, le=1), BeforeValidator(_not_text_or_bool)
]  # constraints first: the schema shows them


# Each field with a PaySim column name: (snake_case name, PaySim name). A message may use either, not both.
ALIASES: tuple[tuple[str, str], ...] = (
    ("name_orig", "nameOrig"),
    ("old_balance_orig", "oldbalanceOrg"),
    ("new_balance_orig", "newbalanceOrig"),
    ("name_dest", "nameDest"),
    ("old_balance_dest", "oldbalanceDest"),
    ("new_balance_dest", "newbalanceDest"),
    ("is_fraud", "isFraud"),
    ("is_flagged_fraud", "isFlaggedFraud"),
)
_ALIAS = dict(ALIASES)


def _alias(field: str) -> AliasChoices:
    return AliasChoices(field, _ALIAS[field])


def _money(description: str, field: str | None = None, minimum: float = -MAX_MONEY) -> Any:
    """A JSON number (never a string or a boolean), finite and within the money bounds."""
    return Field(
        ge=minimum,
        le=MAX_MONEY,
        strict=True,  # strict floats still take integers: 100 is an amount, "100" and true are not
        allow_inf_nan=False,
        validation_alias=_alias(field) if field else None,
        description=description,
    )


def _account(description: str, field: str) -> Any:
    """An account id: 1 to 64 characters, under its snake_case or its PaySim name."""
    return Field(min_length=1, max_length=ID_MAX_LENGTH, validation_alias=_alias(field), description=description)


class Transaction(BaseModel):
    """One mobile-money transaction. Accepts snake_case names or PaySim's own column names (not both).

    Numbers must be JSON numbers: `"100"` or `true` as an amount is a producer's bug, refused rather than
    guessed at. Unknown fields are ignored.
    """

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True, str_strip_whitespace=True)

    tx_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, description="Unique id given by the operator.")
    step: WholeNumber = Field(ge=0, le=MAX_STEP, description="Hour since the start of the simulation (PaySim `step`).")
    type: TxType = Field(description="Transaction type.")
    amount: float = _money("Amount moved.", minimum=0)
    name_orig: str = _account("Originating account id (the Kafka key).", "name_orig")
    old_balance_orig: float = _money("Originator balance before the transaction.", "old_balance_orig")
    new_balance_orig: float = _money("Originator balance after the transaction.", "new_balance_orig")
    name_dest: str = _account("Destination account id (`M...` for merchants).", "name_dest")
    old_balance_dest: float = _money("Destination balance before the transaction.", "old_balance_dest")
    new_balance_dest: float = _money("Destination balance after the transaction.", "new_balance_dest")
    is_fraud: Label | None = Field(
        None,
        validation_alias=_alias("is_fraud"),
        description="Label, when known (replays and training data).",
    )
    is_flagged_fraud: Label | None = Field(
        None,
        validation_alias=_alias("is_flagged_fraud"),
        description="PaySim's rule-based flag, when known.",
    )
    event_time: EventTime = Field(
        None,
        description="When the operator published the transaction (RFC 3339, or seconds since the epoch); "
        "without an offset it is UTC. Between 2000 and 2099.",
    )
