"""The data contract: transactions in, verdicts out, and the one feature function of training and scoring."""

from schemas.transaction import PAYSIM_COLUMNS, Transaction, TxType
from schemas.verdict import Decision, Reason, Verdict

__all__ = ["PAYSIM_COLUMNS", "Decision", "Reason", "Transaction", "TxType", "Verdict"]
