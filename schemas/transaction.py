"""The transaction an operator publishes: one PaySim row plus an id and a publish time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class TxType(StrEnum):
    """PaySim's five transaction types."""

    CASH_IN = "CASH_IN"
    CASH_OUT = "CASH_OUT"
    DEBIT = "DEBIT"
    PAYMENT = "PAYMENT"
    TRANSFER = "TRANSFER"


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


def _alias(field: str, paysim: str) -> AliasChoices:
    return AliasChoices(field, paysim)


class Transaction(BaseModel):
    """One mobile-money transaction. Accepts snake_case names and PaySim's own column names."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True, str_strip_whitespace=True)

    tx_id: str = Field(min_length=1, max_length=64, description="Unique id given by the operator.")
    step: int = Field(ge=0, description="Hour since the start of the simulation (PaySim `step`).")
    type: TxType = Field(description="Transaction type.")
    amount: float = Field(ge=0, allow_inf_nan=False, description="Amount moved.")
    name_orig: str = Field(
        min_length=1,
        max_length=64,
        validation_alias=_alias("name_orig", "nameOrig"),
        description="Originating account id (the Kafka key).",
    )
    old_balance_orig: float = Field(
        allow_inf_nan=False,
        validation_alias=_alias("old_balance_orig", "oldbalanceOrg"),
        description="Originator balance before the transaction.",
    )
    new_balance_orig: float = Field(
        allow_inf_nan=False,
        validation_alias=_alias("new_balance_orig", "newbalanceOrig"),
        description="Originator balance after the transaction.",
    )
    name_dest: str = Field(
        min_length=1,
        max_length=64,
        validation_alias=_alias("name_dest", "nameDest"),
        description="Destination account id (`M...` for merchants).",
    )
    old_balance_dest: float = Field(
        allow_inf_nan=False,
        validation_alias=_alias("old_balance_dest", "oldbalanceDest"),
        description="Destination balance before the transaction.",
    )
    new_balance_dest: float = Field(
        allow_inf_nan=False,
        validation_alias=_alias("new_balance_dest", "newbalanceDest"),
        description="Destination balance after the transaction.",
    )
    is_fraud: int | None = Field(
        None,
        ge=0,
        le=1,
        validation_alias=_alias("is_fraud", "isFraud"),
        description="Label, when known (replays and training data).",
    )
    is_flagged_fraud: int | None = Field(
        None,
        ge=0,
        le=1,
        validation_alias=_alias("is_flagged_fraud", "isFlaggedFraud"),
        description="PaySim's rule-based flag, when known.",
    )
    event_time: datetime | None = Field(None, description="When the operator published the transaction.")
