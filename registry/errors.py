"""The failures of the model registry, one line each: unreachable, no such version, or a version unusable."""

from __future__ import annotations

from core.errors import MomoGuardError


class RegistryError(MomoGuardError):
    """The MLflow tracking server or registry cannot be reached or refused an operation."""


class RegistryUnreachableError(RegistryError):
    """The tracking store or artifact store did not answer or cannot be used: worth retrying later."""


class ModelNotFoundError(RegistryError):
    """No such registered model, version or alias."""


class ModelUnusableError(RegistryError):
    """A registered version cannot score: a bad threshold or feature set, an unreadable or mismatched model file.

    Retrying does not help; only another version (or fixed tags) does.
    """
