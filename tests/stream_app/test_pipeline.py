"""One micro-batch without Kafka: dead letters keep bytes and say why; verdicts in order; model swap."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pytest

from kafka_ops.clients import librdkafka_config
from registry import LoadedModel
from schemas.features import feature_names
from schemas.transaction import Transaction
from schemas.verdict import parse_verdict
from stream_app.metrics import ScorerMetrics
from stream_app.parse import Invalid
from stream_app.pipeline import BatchProcessor, Headers, Incoming, Record, count_verdicts, dead_letter, headers_size
from stream_app.scoring import Scored, Scorer
from tests.support.messages import GOOD
from tests.support.models import train_booster


def model(version: str, rounds: int = 20, threshold: float = 0.5) -> LoadedModel:
    return LoadedModel("m", version, threshold, "pre_settlement", train_booster(rounds), feature_names())


@pytest.fixture(scope="module")
def processor() -> BatchProcessor:
    return BatchProcessor(Scorer(model("1")), ScorerMetrics(), "verdicts", "dlq", max_bytes=2048)


def incoming(offset: int, value: bytes | None, key: bytes | None = b"C1") -> Incoming:
    return Incoming("transactions", 3, offset, key, value, [("trace", b"t")], timestamp_s=1.0)


def test_valid_and_invalid_messages_are_routed(processor: BatchProcessor) -> None:
    batch = [
        incoming(10, orjson.dumps({**GOOD, "tx_id": "a"})),
        incoming(11, b"garbage", key=b"K"),
        incoming(12, orjson.dumps({**GOOD, "tx_id": "b", "type": "PAYMENT", "nameDest": "M1"})),
    ]
    outcome = processor.process(batch)
    assert (outcome.scored, outcome.invalid, outcome.model_version) == (2, 1, "1")
    verdicts = [r for r in outcome.records if r.topic == "verdicts"]
    assert [parse_verdict(r.value).tx_id for r in verdicts] == ["a", "b"]
    assert [r.key for r in verdicts] == [b"C1", b"C1"]
    (dead,) = [r for r in outcome.records if r.topic == "dlq"]
    headers = dict(dead.headers or [])
    assert dead.value == b"garbage" and dead.key == b"K"
    assert headers["trace"] == b"t"
    assert headers["momoguard.reason"] == b"not_json"
    assert (headers["momoguard.source.topic"], headers["momoguard.source.partition"]) == (b"transactions", b"3")
    assert headers["momoguard.source.offset"] == b"11"
    assert len(outcome.started_at) == 2


def test_swap_takes_effect_from_the_next_batch(processor: BatchProcessor) -> None:
    before = processor.process([incoming(1, orjson.dumps(GOOD))])
    processor.swap(Scorer(model("2", rounds=30, threshold=0.3)))
    after = processor.process([incoming(2, orjson.dumps(GOOD))])
    v1, v2 = (parse_verdict(o.records[0].value) for o in (before, after))
    assert (v1.model_version, v1.threshold) == ("1", 0.5)
    assert (v2.model_version, v2.threshold) == ("2", 0.3)


def test_blocked_verdicts_carry_reasons_and_low_scores_none() -> None:
    scorer = Scorer(model("1"), reasons=3, explain_min_score=0.5)
    whole_balance = {**GOOD, "amount": 181.0, "oldbalanceOrg": 181.0}
    payment = {**GOOD, "type": "PAYMENT", "nameDest": "M99", "amount": 10.0, "oldbalanceOrg": 5000.0}

    scored = scorer.score([Transaction.model_validate(whole_balance), Transaction.model_validate(payment)])
    fraud, genuine = (parse_verdict(v) for v in scored.verdicts)
    assert fraud.decision == "block" and 1 <= len(fraud.reasons) <= 3
    names = set(feature_names())
    assert all(r.feature in names for r in fraud.reasons)
    contributions = [abs(r.contribution) for r in fraud.reasons]
    assert contributions == sorted(contributions, reverse=True)
    assert genuine.decision == "allow" and genuine.reasons == []


def test_an_unreachable_registry_keeps_the_current_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from core.settings import Settings
    from stream_app.delivery import Deliverer
    from stream_app.state import ScorerState
    from stream_app.upkeep import check_for_new_champion
    from stream_app.worker import REGISTRY_CLIENT_ENV

    for name, value in REGISTRY_CLIENT_ENV.items():
        monkeypatch.setenv(name, value)

    settings = Settings(mlflow_tracking_uri="http://127.0.0.1:9/", kafka_bootstrap="127.0.0.1:9")
    metrics = ScorerMetrics()
    state = ScorerState(
        settings,
        BatchProcessor(Scorer(model("7")), metrics, "v", "d", 2048),
        metrics,
        Deliverer(librdkafka_config(settings)),
    )
    asyncio.run(check_for_new_champion(state))
    assert state.version == "7"
    assert state.reload_failures == 1
    assert metrics.reloads.labels("unreachable")._value.get() == 1.0


def record_size(record: Record) -> int:
    return len(record.key or b"") + len(record.value) + headers_size(record.headers)


@pytest.mark.parametrize(
    ("key", "value", "headers"),
    [
        (b"C1", b"{" + b" " * 999_948 + b"}", None),  # a ~1 MB value the broker accepts
        (b"K" * 999_800, b'{"tx_id": "1"}', None),  # a ~1 MB key
        (b"C1", b"x" * 100_000, [(f"h{i}", b"v" * 1000) for i in range(300)]),  # 300 kB of headers
    ],
    ids=["huge-value", "huge-key", "huge-headers"],
)
def test_a_dead_letter_stays_under_its_cap_and_says_what_it_left_out(
    key: bytes, value: bytes, headers: Headers | None
) -> None:
    message = Incoming("transactions", 2, 77, key, value, headers)
    dead = dead_letter(message, Invalid("too_large", "big"), "dlq", max_bytes=65_536)
    assert record_size(dead) <= 65_536
    said = dict(dead.headers or [])
    assert said["momoguard.reason"] == b"too_large" and said["momoguard.source.offset"] == b"77"
    assert said["momoguard.truncated"] == b"true"
    assert said["momoguard.original.value_bytes"] == str(len(value)).encode()
    assert said["momoguard.original.key_bytes"] == str(len(key)).encode()
    assert said["momoguard.original.value_sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert value.startswith(dead.value) and key.startswith(dead.key or b"")
    assert dead.value, "a prefix of the value is kept"


def test_a_small_dead_letter_keeps_everything() -> None:
    message = Incoming("transactions", 0, 1, b"C1", b"garbage", [("trace", b"t")])
    dead = dead_letter(message, Invalid("not_json", "x"), "dlq", max_bytes=65_536)
    assert (dead.key, dead.value) == (b"C1", b"garbage")
    assert "momoguard.truncated" not in dict(dead.headers or []) and ("trace", b"t") in (dead.headers or [])


class PickyScorer(Scorer):
    """Fails any batch holding the transaction `bad` (a stand-in for a bug that one input sets off)."""

    def score(self, transactions: Sequence[Transaction], now: datetime | None = None, **more: Any) -> Scored:
        if any(tx.tx_id == "bad" for tx in transactions):
            raise OverflowError("cannot convert to C long")
        return super().score(transactions, now, **more)


def test_a_batch_that_fails_to_score_is_scored_one_by_one_and_only_the_culprit_is_dead_lettered() -> None:
    metrics = ScorerMetrics()
    processor = BatchProcessor(PickyScorer(model("1")), metrics, "verdicts", "dlq", max_bytes=2048)
    batch = [incoming(i, orjson.dumps({**GOOD, "tx_id": tx_id})) for i, tx_id in enumerate(["a", "bad", "b"])]
    outcome = processor.process(batch)
    verdicts = [parse_verdict(r.value).tx_id for r in outcome.records if r.topic == "verdicts"]
    (dead,) = [r for r in outcome.records if r.topic == "dlq"]
    said = dict(dead.headers or [])
    assert verdicts == ["a", "b"] and outcome.scored == 2 and len(outcome.started_at) == 2
    assert said["momoguard.reason"] == b"scoring_error" and b"OverflowError" in said["momoguard.error"]
    assert said["momoguard.source.offset"] == b"1"
    assert metrics.invalid.labels("scoring_error")._value.get() == 1


def test_an_undeliverable_verdict_becomes_a_dead_letter_of_its_transaction(processor: BatchProcessor) -> None:
    source = incoming(5, orjson.dumps(GOOD))
    (verdict,) = processor.process([source]).records
    dead = processor.undeliverable(verdict, "Broker: Message size too large")
    assert dead is not None and dead.topic == "dlq" and dead.value == source.value
    assert dict(dead.headers or [])["momoguard.reason"] == b"undeliverable"
    assert processor.undeliverable(dead, "again") is None, "a dead letter has nothing to fall back on"


def test_count_verdicts_moves_each_counter_by_the_batch() -> None:
    metrics = ScorerMetrics()
    blocked = np.array([True, False, False, True, False])
    reviewed = np.array([False, True, False, False, False])
    late = np.array([True, True, False, False, False])
    scored = Scored([b"v"] * 5, np.zeros(5), blocked, reviewed, late, np.zeros((5, 1)), {"block": 1})
    count_verdicts(metrics, scored)
    value = metrics.registry.get_sample_value
    decisions = ("block", "review", "allow")
    by_decision = {d: value("momoguard_transactions_scored_total", {"decision": d}) for d in decisions}
    assert by_decision == {"block": 2.0, "review": 1.0, "allow": 2.0}
    assert value("momoguard_list_decisions_total", {"action": "block"}) == 1.0
    assert value("momoguard_late_verdicts_total") == 2.0
