"""Transactions as a producer sends them, for the tests of the parser, the pipeline and the contract."""

from __future__ import annotations

from typing import Any

# One valid transaction under PaySim's names: a victim's whole balance TRANSFERred to an empty account.
GOOD: dict[str, Any] = {
    "tx_id": "1",
    "step": 1,
    "type": "TRANSFER",
    "amount": 181.0,
    "nameOrig": "C1305486145",
    "oldbalanceOrg": 181.0,
    "newbalanceOrig": 0.0,
    "nameDest": "C553264065",
    "oldbalanceDest": 0.0,
    "newbalanceDest": 0.0,
}
