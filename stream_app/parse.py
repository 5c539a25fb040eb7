"""Bytes in, a validated `Transaction` or the reason it is not one: never raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jiter
from pydantic import ValidationError

from schemas.transaction import ALIASES, Transaction

# Reasons are counter labels: keep them few and stable.
REASONS = (
    "empty",
    "too_large",
    "not_utf8",
    "not_json",
    "duplicate_key",
    "not_object",
    "ambiguous_field",
    "missing_field",
    "wrong_type",
    "not_finite",
    "out_of_range",
    "unknown_type",
    "invalid_field",
    "scoring_error",
    "undeliverable",
)

_BY_ERROR_TYPE = {
    "missing": "missing_field",
    "finite_number": "not_finite",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "string_too_short": "out_of_range",
    "string_too_long": "out_of_range",
    "int_from_float": "wrong_type",
    "event_time_range": "out_of_range",
    "enum": "unknown_type",
    "model_type": "not_object",
    "model_attributes_type": "not_object",
}


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a message is not a transaction: a counter label and a one-line error."""

    reason: str
    error: str


def parse_transaction(value: bytes | None, max_bytes: int, overhead: int = 0) -> Transaction | Invalid:
    """Validate one message value. Arbitrary bytes give an `Invalid`, never an exception.

    `overhead` is what the message carries besides its value (key and headers): it counts toward
    `max_bytes` too, so no part of a message can make its verdict or dead letter too large to produce.
    """
    if not value:
        return Invalid("empty", "empty message")
    if len(value) + overhead > max_bytes:
        parts = f" (value {len(value)}, key and headers {overhead})" if overhead else ""
        return Invalid("too_large", f"message of {len(value) + overhead} bytes{parts} is over the {max_bytes}-byte cap")
    try:
        # jiter is the parser pydantic uses; unlike it (and orjson) it can refuse duplicate keys, which would
        # otherwise be resolved silently to the last one. Infinity and NaN pass here and are refused per field.
        fields = jiter.from_json(value, catch_duplicate_keys=True, cache_mode="keys")
    except ValueError as error:
        return _not_json(value, error)
    if not isinstance(fields, dict):
        return Invalid("not_object", "not a JSON object")
    for snake, paysim in ALIASES:
        if snake in fields and paysim in fields:
            return Invalid("ambiguous_field", f"both {snake} and its PaySim name {paysim} are given")
    try:
        return Transaction.model_validate(fields)
    except ValidationError as error:
        return _invalid(error)
    except Exception as error:  # defensive: the contract is "never raises"
        return Invalid("invalid_field", f"{type(error).__name__}: {error}"[:300])


def _not_json(value: bytes, error: ValueError) -> Invalid:
    message = str(error).splitlines()[0][:300]
    if message.startswith("Detected duplicate key"):
        return Invalid("duplicate_key", message)
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Invalid("not_utf8", f"not UTF-8: {bad.reason} at byte {bad.start}")
    return Invalid("not_json", f"not JSON: {message}")


def _invalid(error: ValidationError) -> Invalid:
    first: Any = error.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    field = ".".join(str(part) for part in first["loc"]) or "message"
    reason = _BY_ERROR_TYPE.get(kind)
    if reason is None:
        reason = "wrong_type" if kind.endswith(("_type", "_parsing")) else "invalid_field"
    if kind == "value_error" and field == "event_time":
        reason = "out_of_range"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return Invalid(reason, f"{field}: {first['msg']}{more}"[:500])
