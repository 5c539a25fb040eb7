"""A hostile producer against the real scorer: every message gets exactly one outcome and scoring never stops.

Each hostile kind is sent between valid transactions. A valid one must get its verdict; a hostile one its dead
letter, with the expected reason, found by the partition and offset it was written at. After a restart nothing
already answered is read again.
"""

from __future__ import annotations

import functools
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest
from confluent_kafka import Producer

from tests.support.harness import ScorerEnv, ScorerProcess, collect, wait_committed_to_end
from tests.support.models import sample_rows

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CAP = 16_384  # MOMOGUARD_MAX_MESSAGE_BYTES's default: value, key and headers together


@dataclass
class Sent:
    kind: str
    expect: str  # "verdict" or the dead letter's reason
    tx_id: str | None
    partition: int = -1
    offset: int = -1


@functools.cache
def first_row() -> dict[str, object]:
    return sample_rows()[0]


def good(tx_id: str, **change: object) -> dict[str, object]:
    return {**first_row(), "tx_id": tx_id, "event_time": time.time(), **change}


def raw(tx_id: str, **change: object) -> bytes:
    return orjson.dumps(good(tx_id, **change))


def padded_to(total: int, tx_id: str, key: bytes) -> bytes:
    """A valid transaction whose key and value come to exactly `total` bytes (an unknown field pads it)."""
    body = raw(tx_id)[:-1] + b',"pad":"'
    return body + b"x" * (total - len(key) - len(body) - 2) + b'"}'


def hostile_kinds(run: str) -> list[tuple[str, str, bytes | None, bytes | None, list[tuple[str, bytes]] | None]]:
    """(kind, expected outcome, key, value, headers): at least 25 kinds a hostile or buggy producer sends."""
    key = b"C1231006815"
    g = raw(f"{run}-g")
    return [
        ("value of ~1 MB", "too_large", key, b"{" + b" " * 999_948 + b"}", None),
        ("key of ~1 MB", "too_large", b"K" * 999_800, raw(f"{run}-bigkey"), None),
        ("step of 400 digits", "out_of_range", key, g.replace(b'"step":1', b'"step":' + b"9" * 400), None),
        ("exactly at the cap", "verdict", key, padded_to(CAP, f"{run}-atcap", key), None),
        ("one byte over the cap", "too_large", key, padded_to(CAP + 1, f"{run}-overcap", key), None),
        ("key tips it over the cap", "too_large", b"C" * 200, padded_to(CAP - 100, f"{run}-keytip", key), None),
        ("50 kB of headers", "too_large", key, raw(f"{run}-hdr"), [(f"h{i}", b"v" * 1000) for i in range(50)]),
        ("small headers", "verdict", key, raw(f"{run}-smallhdr"), [("trace-id", b"abc"), ("empty", b"")]),
        ("empty value", "empty", key, b"", None),
        ("tombstone (null value)", "empty", key, None, None),
        ("not UTF-8", "not_utf8", key, b'{"tx_id": "\xff\xfe"}', None),
        ("not JSON", "not_json", key, b"{nope", None),
        ("JSON array", "not_object", key, b"[1, 2, 3]", None),
        ("JSON string", "not_object", key, b'"TRANSFER"', None),
        ("nesting 600 deep", "not_json", key, b'{"a":' * 600 + b"1" + b"}" * 600, None),
        ("duplicate key", "duplicate_key", key, raw(f"{run}-dup")[:-1] + b',"amount":1.0}', None),
        ("field under both names", "ambiguous_field", key, raw(f"{run}-both", name_orig="C9"), None),
        ("amount as text", "wrong_type", key, raw(f"{run}-txt", amount="100"), None),
        ("amount as a boolean", "wrong_type", key, raw(f"{run}-bool", amount=True), None),
        ("amount NaN", "not_finite", key, g.replace(b'"amount":9839.64', b'"amount":NaN'), None),
        ("amount 1e999", "not_finite", key, g.replace(b'"amount":9839.64', b'"amount":1e999'), None),
        ("negative amount", "out_of_range", key, raw(f"{run}-neg", amount=-5.0), None),
        ("amount of 1e16", "out_of_range", key, raw(f"{run}-huge", amount=1e16), None),
        ("tiny amount 5e-324", "verdict", key, raw(f"{run}-tiny", amount=5e-324), None),
        ("negative step", "out_of_range", key, raw(f"{run}-negstep", step=-1), None),
        ("step 1.5", "wrong_type", key, raw(f"{run}-frac", step=1.5), None),
        ("event_time in milliseconds", "out_of_range", key, raw(f"{run}-ms", event_time=1_764_000_000_000), None),
        ("event_time in 1970", "out_of_range", key, raw(f"{run}-1970", event_time="1970-01-01T00:00:00Z"), None),
        ("event_time as words", "wrong_type", key, raw(f"{run}-words", event_time="yesterday"), None),
        ("tx_id of 65 characters", "out_of_range", key, raw("x" * 65), None),
        ("account name of 10 kB", "out_of_range", key, raw(f"{run}-name", nameOrig="C" * 10_000), None),
        ("missing amount", "missing_field", key, orjson.dumps({"tx_id": f"{run}-miss", "step": 1}), None),
        ("unknown type", "unknown_type", key, raw(f"{run}-type", type="REFUND"), None),
        ("isFraud 2", "out_of_range", key, raw(f"{run}-label", isFraud=2), None),
        ("unknown nested field", "verdict", key, raw(f"{run}-nested", extra={"deep": [1, {"x": None}]}), None),
    ]


def send(bootstrap: str, topic: str, run: str, valid_between: int = 3) -> list[Sent]:
    """Every hostile kind, each between valid transactions; learns where each message was written."""
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 2_000_000, "acks": "all"})
    sent: list[Sent] = []

    def place(entry: Sent) -> Callable[[object, object], None]:
        def on_delivery(error: object, message: object) -> None:
            assert error is None, error
            entry.partition, entry.offset = message.partition(), message.offset()  # type: ignore[attr-defined]

        return on_delivery

    def put(entry: Sent, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None) -> None:
        sent.append(entry)
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=place(entry))
        producer.poll(0)

    n = 0
    for kind, expect, key, value, headers in hostile_kinds(run):
        for _ in range(valid_between):
            tx_id = f"{run}-valid-{n}"
            n += 1
            put(Sent("valid neighbour", "verdict", tx_id), b"C1231006815", raw(tx_id), None)
        tx_id = orjson.loads(value).get("tx_id") if expect == "verdict" and value else None
        put(Sent(kind, expect, tx_id), key, value, headers)
    assert producer.flush(60) == 0
    return sent


def test_every_hostile_message_gets_exactly_one_outcome_and_scoring_goes_on(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], scorer: ScorerProcess
) -> None:
    s = scorer_env.settings
    run = uuid.uuid4().hex[:6]
    sent = send(s.kafka_bootstrap, s.topic_transactions, run)
    kinds = {e.kind for e in sent if e.kind != "valid neighbour"}
    assert len(kinds) >= 25
    wanted = [e for e in sent if e.expect == "verdict"]
    dead_wanted = [e for e in sent if e.expect != "verdict"]

    verdicts = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(wanted))
    dead = collect(s.kafka_bootstrap, s.topic_dlq, expect=len(dead_wanted), decode=False)
    got_ids = sorted(str(v["tx_id"]) for v in verdicts.values)
    assert got_ids == sorted(str(e.tx_id) for e in wanted), "each valid message: one verdict, nothing else"
    reasons = {
        (int(h["momoguard.source.partition"]), int(h["momoguard.source.offset"])): h["momoguard.reason"].decode()
        for h in dead.headers
    }
    assert len(dead.headers) == len(dead_wanted) == len(reasons), "each hostile message: one dead letter"
    outcome = {e.kind: reasons.get((e.partition, e.offset)) for e in dead_wanted}
    assert outcome == {e.kind: e.expect for e in dead_wanted}
    assert all(len(r) <= s.dlq_max_bytes for r in dead.raw), "every dead letter fits the dead-letter cap"

    health = scorer.health()
    assert health["status"] == "alive", health

    # It keeps scoring, and a restart reads nothing already answered: no verdict or dead letter twice.
    wait_committed_to_end(s)
    assert scorer.stop(signal.SIGTERM) == 0
    again = start_scorer()
    again.wait_ready()
    later = [f"{run}-after-{i}" for i in range(200)]
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap})
    for tx_id in later:
        producer.produce(s.topic_transactions, key=b"C1231006815", value=raw(tx_id))
    assert producer.flush(30) == 0
    verdicts = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(wanted) + len(later))
    ids = [str(v["tx_id"]) for v in verdicts.values]
    assert sorted(ids) == sorted([str(e.tx_id) for e in wanted] + later), "nothing re-read, nothing missed"
    dead_again = collect(s.kafka_bootstrap, s.topic_dlq, expect=len(dead_wanted), decode=False, timeout=10)
    assert len(dead_again.raw) == len(dead_wanted)
    print(
        f"RELIABILITY hostile corpus: {len(kinds)} kinds, {len(sent)} messages, {len(wanted)} verdicts, "
        f"{len(dead_wanted)} dead letters, restart re-read 0"
    )
    assert again.stop() == 0
