"""The data contract: PaySim rows validate as is; every kind of bad field is rejected and named."""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from paysim.kaggle import SAMPLES_DIR
from schemas import PAYSIM_COLUMNS, Transaction, TxType
from schemas.json_schema import SCHEMA_DIR, rendered
from schemas.transaction import ALIASES
from schemas.verdict import ListHit, Reason, Verdict, parse_verdict, verdict_bytes
from tests.support.messages import GOOD
from tests.support.models import typed


def _head_rows() -> list[dict[str, str]]:
    with (SAMPLES_DIR / "kaggle_head_step1.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _valid() -> dict[str, Any]:
    return {**GOOD, "tx_id": "t-1", "isFraud": 1, "isFlaggedFraud": 0}


def test_every_row_of_the_kaggle_head_validates_as_a_producer_sends_it() -> None:
    rows = _head_rows()
    assert tuple(rows[0].keys()) == PAYSIM_COLUMNS
    parsed = [Transaction.model_validate({**typed(row), "tx_id": str(i)}) for i, row in enumerate(rows)]
    assert len(parsed) == 2688
    assert sum(t.is_fraud or 0 for t in parsed) == 16
    java_style = [t for t, row in zip(parsed, rows, strict=True) if "E7" in row["oldbalanceDest"]]
    assert java_style, "the sample holds Java-style numbers such as 1.916920493E7"
    assert any(t.old_balance_dest == pytest.approx(19169204.93) for t in java_style)


def test_snake_case_names_are_accepted_and_dumped() -> None:
    t = Transaction.model_validate(_valid())
    again = Transaction.model_validate(t.model_dump())
    assert again == t
    assert t.type is TxType.TRANSFER and t.name_orig == "C1305486145"


def test_json_bytes_validate() -> None:
    raw = json.dumps({**_valid(), "event_time": "2026-11-28T10:00:00Z"}).encode()
    t = Transaction.model_validate_json(raw)
    assert t.event_time == datetime(2026, 11, 28, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("tx_id", "", "tx_id"),
        ("tx_id", "x" * 65, "tx_id"),
        ("step", -1, "step"),
        ("step", "one", "step"),
        ("type", "REFUND", "type"),
        ("amount", -5.0, "amount"),
        ("amount", "nan", "amount"),
        ("amount", float("inf"), "amount"),
        ("amount", "lots", "amount"),
        ("nameOrig", "", "nameOrig"),
        ("oldbalanceOrg", "inf", "oldbalanceOrg"),
        ("newbalanceDest", None, "newbalanceDest"),
        ("isFraud", 2, "isFraud"),
        ("event_time", "yesterday", "event_time"),
    ],
)
def test_each_kind_of_invalid_field_is_rejected_with_its_name(field: str, value: object, named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Transaction.model_validate({**_valid(), field: value})
    locations = {str(error["loc"][0]) for error in caught.value.errors()}
    assert named in locations, caught.value


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("tx_id", "tx_id"),
        ("step", "step"),
        ("type", "type"),
        ("amount", "amount"),
        ("nameOrig", "name_orig"),
        ("oldbalanceOrg", "old_balance_orig"),
    ],
)
def test_missing_required_field_is_named(missing: str, named: str) -> None:
    data = _valid()
    del data[missing]
    with pytest.raises(ValidationError) as caught:
        Transaction.model_validate(data)
    assert [error["loc"][0] for error in caught.value.errors()] == [named]


def test_labels_are_optional() -> None:
    data = _valid()
    del data["isFraud"], data["isFlaggedFraud"]
    assert Transaction.model_validate(data).is_fraud is None


def test_a_verdict_goes_to_bytes_and_back_and_its_bounds_hold() -> None:
    why = [Reason("amount", 1.5, "AMOUNT_RAISES", "The amount raised the risk.")]
    ok = Verdict("t", "block", 0.9, 0.5, "m", "3", datetime.now(UTC), why)
    assert parse_verdict(verdict_bytes(ok)) == ok
    fields = orjson.loads(verdict_bytes(ok))
    assert list(fields) == [f.name for f in dataclasses.fields(Verdict)], "the wire shape is the definition"
    defaults = (fields["decided_by"], fields["list_entry"], fields["late"], fields["review_threshold"])
    assert defaults == ("model", None, False, None)
    for bad in (
        {"score": 1.5},
        {"decision": "maybe"},
        {"threshold": -0.1},
        {"tx_id": ""},
        {"reasons": [{}]},
        {"reasons": [{**fields["reasons"][0], "code": "not a code"}]},
        {"review_threshold": 0.0},
        {"decided_by": "someone"},
        {"late": "sometimes"},
        {"list_entry": {"account": "C1"}},
    ):
        with pytest.raises(ValidationError):
            parse_verdict(orjson.dumps({**fields, **bad}))


def test_a_list_decided_review_verdict_goes_to_bytes_and_back() -> None:
    now = datetime.now(UTC)
    hit = ListHit("C1", "dest", "both", "block", "SIM swap reported", "desk", now, None)
    listed = Verdict("t", "block", 0.01, 0.5, "m", "3", now, [], None, 0.2, "list", hit, True)
    assert parse_verdict(verdict_bytes(listed)) == listed
    review = Verdict("u", "review", 0.3, 0.5, "m", "3", now, review_threshold=0.2)
    assert parse_verdict(verdict_bytes(review)).decision == "review"


def test_json_schema_files_are_up_to_date() -> None:
    for path, text in rendered().items():
        assert path.exists(), f"{path.name} missing: run `make schemas`"
        assert path.read_text() == text, f"{path.name} is stale: run `make schemas`"


# Messages on both sides of every rule the published schema states. The parser must accept exactly the ones the
# schema accepts. Two rules are beyond JSON Schema and so are the parser's alone (tests/stream_app/test_parse.py):
# duplicate keys, and the range of an event_time given as a date string.
_AGREEMENT: list[tuple[str, dict[str, Any]]] = [
    ("PaySim names", {}),
    ("snake_case names", {"@rename": True}),
    ("step 1.0 is an integer", {"step": 1.0}),
    ("labels left out", {"@drop": ["isFraud", "isFlaggedFraud"]}),
    ("event_time as RFC 3339", {"event_time": "2026-11-28T10:00:00Z"}),
    ("event_time as seconds", {"event_time": 1_764_000_000.5}),
    ("event_time null", {"event_time": None}),
    ("an unknown field", {"channel": "USSD"}),
    ("amount as text", {"amount": "100"}),
    ("amount as a boolean", {"amount": True}),
    ("step as text", {"step": "1"}),
    ("step with a fraction", {"step": 1.5}),
    ("step of 400 digits", {"step": 10**400}),
    ("negative amount", {"amount": -1.0}),
    ("amount over the bound", {"amount": 2e15}),
    ("balance under the bound", {"oldbalanceOrg": -2e15}),
    ("event_time in milliseconds", {"event_time": 1_764_000_000_000}),
    ("event_time before 2000", {"event_time": 900_000_000}),
    ("isFraud 2", {"isFraud": 2}),
    ("isFraud true", {"isFraud": True}),
    ("unknown type", {"type": "REFUND"}),
    ("tx_id of 65 characters", {"tx_id": "x" * 65}),
    ("missing amount", {"@drop": ["amount"]}),
    ("both names for the originator", {"name_orig": "C1"}),
    ("both names for a label", {"is_fraud": 0}),
]


@pytest.mark.parametrize(("case", "change"), _AGREEMENT, ids=[case for case, _ in _AGREEMENT])
def test_the_published_schema_and_the_parser_agree(case: str, change: dict[str, Any]) -> None:
    import jsonschema

    from stream_app.parse import Invalid, parse_transaction

    message = _valid()
    if change.pop("@rename", False):
        message = {snake: message.pop(paysim) for snake, paysim in ALIASES if paysim in message} | message
    for field in change.pop("@drop", []):
        del message[field]
    message.update(change)
    schema = json.loads((SCHEMA_DIR / "transaction.schema.json").read_text())
    schema_says = jsonschema.Draft202012Validator(schema).is_valid(message)
    raw = json.dumps(message).encode()  # stdlib json: it writes integers beyond 64 bits
    parser_says = not isinstance(parse_transaction(raw, max_bytes=16_384), Invalid)
    assert schema_says == parser_says, f"{case}: schema {schema_says}, parser {parser_says}"
