"""The failures training and evaluation report to the user, one line each."""

from __future__ import annotations

from core.errors import DataError, MomoGuardError


class TrainingError(MomoGuardError):
    """Training or evaluation cannot go on."""


class NoFraudError(TrainingError, DataError):
    """A time window has no fraud (or no genuine) rows, so nothing can be learnt or measured on it."""
