"""Bytes in, a validated `Transaction` or the reason it is not one: never raises."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from schemas.transaction import Transaction

# Reasons are counter labels: keep them few and stable.
REASONS = (
    "empty",
    "too_large",
    "not_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "not_finite",
    "out_of_range",
    "unknown_type",
    "invalid_field",
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
    "enum": "unknown_type",
    "model_type": "not_object",
    "model_attributes_type": "not_object",
}


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a message is not a transaction: a counter label and a one-line error."""

    reason: str
    error: str


def parse_transaction(value: bytes | None, max_bytes: int) -> Transaction | Invalid:
    """Validate one message value. Arbitrary bytes give an `Invalid`, never an exception."""
    if not value:
        return Invalid("empty", "empty message")
    if len(value) > max_bytes:
        return Invalid("too_large", f"message of {len(value)} bytes is over the {max_bytes}-byte cap")
    try:
        return Transaction.model_validate_json(value)
    except ValidationError as error:
        return _invalid(value, error)
    except Exception as error:  # defensive: the contract is "never raises"
        return Invalid("invalid_field", f"{type(error).__name__}: {error}"[:300])


def _invalid(value: bytes, error: ValidationError) -> Invalid:
    first = error.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as bad:
            return Invalid("not_utf8", f"not UTF-8: {bad.reason} at byte {bad.start}")
        return Invalid("not_json", f"not JSON: {first['msg']}")
    if kind == "json_type" or kind.startswith("model_"):
        return Invalid("not_object", "not a JSON object")
    field = ".".join(str(part) for part in first["loc"]) or "message"
    reason = _BY_ERROR_TYPE.get(kind)
    if reason is None:
        reason = "wrong_type" if kind.endswith(("_type", "_parsing")) else "invalid_field"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return Invalid(reason, f"{field}: {first['msg']}{more}")
