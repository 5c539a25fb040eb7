"""The data contract: transactions in, verdicts out, and the one feature function of training and scoring."""

from schemas.lists import ListEntry
from schemas.transaction import PAYSIM_COLUMNS, Transaction, TxType
from schemas.verdict import Decision, ListHit, Reason, Verdict

__all__ = ["PAYSIM_COLUMNS", "Decision", "ListEntry", "ListHit", "Reason", "Transaction", "TxType", "Verdict"]
