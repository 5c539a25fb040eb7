"""The message parser: each kind of bad message gets its reason; arbitrary bytes never raise."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.transaction import Transaction
from stream_app.parse import REASONS, Invalid, parse_transaction
from tests.support.messages import GOOD


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (None, "empty"),
        (b"x" * 5000, "too_large"),
        (b'{"tx_id": "\xff"}', "not_utf8"),
        (b"{nope", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b"null", "not_object"),
        (orjson.dumps({k: v for k, v in GOOD.items() if k != "step"}), "missing_field"),
        (orjson.dumps({**GOOD, "amount": "many"}), "wrong_type"),
        (orjson.dumps({**GOOD, "amount": -1}), "out_of_range"),
        (orjson.dumps({**GOOD, "type": "REFUND"}), "unknown_type"),
        (orjson.dumps(GOOD).replace(b'"amount":181.0', b'"amount":1e999'), "not_finite"),
        (orjson.dumps(GOOD).replace(b'"amount":181.0', b'"amount":NaN'), "not_finite"),
        (orjson.dumps({**GOOD, "amount": "NaN"}), "wrong_type"),
        (orjson.dumps({**GOOD, "amount": "100"}), "wrong_type"),
        (orjson.dumps({**GOOD, "amount": True}), "wrong_type"),
        (orjson.dumps({**GOOD, "step": 1.5}), "wrong_type"),
        (orjson.dumps(GOOD).replace(b'"step":1', b'"step":' + b"9" * 400), "out_of_range"),
        (orjson.dumps(GOOD).replace(b'"step":1', b'"step":' + b"9" * 3000), "out_of_range"),
        (orjson.dumps({**GOOD, "amount": 2e15}), "out_of_range"),
        (orjson.dumps({**GOOD, "event_time": 1_764_000_000_000}), "out_of_range"),
        (orjson.dumps({**GOOD, "event_time": "1970-01-01T00:00:00Z"}), "out_of_range"),
        (orjson.dumps(GOOD)[:-1] + b',"amount":1.0}', "duplicate_key"),
        (orjson.dumps({**GOOD, "name_orig": "C9"}), "ambiguous_field"),
        (b'{"a":' * 600 + b"1" + b"}" * 600, "not_json"),
    ],
)
def test_each_kind_of_bad_message_gets_its_reason(value: bytes | None, reason: str) -> None:
    parsed = parse_transaction(value, max_bytes=4096)
    assert isinstance(parsed, Invalid), parsed
    assert parsed.reason == reason, parsed
    assert parsed.reason in REASONS and parsed.error and "\n" not in parsed.error


def test_the_key_and_headers_count_toward_the_size_cap() -> None:
    value = orjson.dumps(GOOD)
    assert isinstance(parse_transaction(value, max_bytes=len(value) + 100, overhead=100), Transaction)
    parsed = parse_transaction(value, max_bytes=len(value) + 100, overhead=101)
    assert isinstance(parsed, Invalid) and parsed.reason == "too_large" and "key and headers 101" in parsed.error


@pytest.mark.parametrize(
    ("event_time", "accepted"),
    [
        ("2000-01-01T00:00:00Z", True),
        ("1999-12-31T23:59:59.999999Z", False),
        ("2000-01-01T00:59:59.999999+01:00", False),  # 1999 in UTC
        ("2099-12-31T23:59:59.999999Z", True),
        ("2100-01-01T00:00:00Z", False),
        ("2100-01-01T00:59:59.999999+01:00", True),  # 2099 in UTC
        ("2099-12-31T23:00:00-01:00", False),  # 2100 in UTC
        ("2099-12-31T23:59:59.999999", True),  # no offset: UTC
        ("2100-01-01T00:00:00", False),
        (946_684_800, True),
        (946_684_799.999999, False),
        (4_102_444_799.999999, True),
        (4_102_444_800, False),
    ],
)
def test_event_time_bounds_hold_to_the_microsecond(event_time: str | float, accepted: bool) -> None:
    parsed = parse_transaction(orjson.dumps({**GOOD, "event_time": event_time}), max_bytes=4096)
    if accepted:
        assert isinstance(parsed, Transaction), parsed
        assert parsed.event_time is not None and parsed.event_time.utcoffset() is not None
    else:
        assert isinstance(parsed, Invalid) and parsed.reason == "out_of_range", parsed


def test_a_good_message_parses() -> None:
    parsed = parse_transaction(orjson.dumps(GOOD), max_bytes=4096)
    assert isinstance(parsed, Transaction) and parsed.amount == 181.0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(value: bytes) -> None:
    parsed = parse_transaction(value, max_bytes=512)
    assert isinstance(parsed, Transaction | Invalid)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*GOOD, "event_time", "isFraud", "extra"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    )
)
def test_arbitrary_json_objects_never_raise(fields: dict[str, object]) -> None:
    # stdlib json: it writes what orjson refuses (NaN, Infinity, integers beyond 64 bits)
    parsed = parse_transaction(json.dumps({**GOOD, **fields}).encode(), max_bytes=4096)
    assert isinstance(parsed, Transaction | Invalid)
