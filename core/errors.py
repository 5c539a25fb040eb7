"""The exceptions MoMo Guard raises on purpose: each carries a one-line message for the user."""


class MomoGuardError(Exception):
    """Base of every expected failure; the CLI prints its message on one line and exits non-zero."""

    exit_code = 1


class ConfigError(MomoGuardError):
    """A setting or argument is wrong."""

    exit_code = 2


class BrokerError(MomoGuardError):
    """The Kafka broker cannot be started, stopped or reached."""


class DataError(MomoGuardError):
    """A data file is missing, unreadable or not in the expected format."""
