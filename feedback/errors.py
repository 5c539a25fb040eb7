"""The closed loop's failures, each a one-line message for the command line."""

from core.errors import ConfigError, DataError


class LabelInputError(ConfigError):
    """A label given on the command line or in a CSV file is not one (the file is refused whole)."""


class NotEnoughLabelsError(DataError):
    """The log holds too few labelled frauds to train on (or to judge a challenger by)."""


class LogWriteError(DataError):
    """The sink cannot write a part to the log folder (unwritable, full); nothing read since the last part is
    committed, so a restart reads it again."""
