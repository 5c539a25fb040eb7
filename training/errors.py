"""The failures training, evaluation and the model registry report to the user, one line each."""

from __future__ import annotations

from momoguard import errors
from momoguard.errors import MomoGuardError


class TrainingError(MomoGuardError):
    """Training or evaluation cannot go on."""


class DataError(TrainingError, errors.DataError):
    """The data is empty, malformed or unlabelled (also a `momoguard.errors.DataError`)."""


class NoFraudError(DataError):
    """A time window has no fraud (or no genuine) rows, so nothing can be learnt or measured on it."""


class RegistryError(TrainingError):
    """The MLflow tracking server or registry cannot be reached or refused an operation."""


class RegistryUnreachableError(RegistryError):
    """The tracking store or artifact store did not answer or cannot be used: worth retrying later."""


class ModelNotFoundError(RegistryError):
    """No such registered model, version or alias."""


class ModelUnusableError(RegistryError):
    """A registered version cannot score: a bad threshold or feature set, an unreadable or mismatched model file.

    Retrying does not help; only another version (or fixed tags) does.
    """
