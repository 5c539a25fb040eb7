"""Scores to decisions without Kafka: the review tier on and off, a list entry over the model, the deadline."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest

from registry import LoadedModel
from schemas.features import feature_names
from schemas.lists import ListEntry
from schemas.transaction import Transaction
from schemas.verdict import parse_verdict
from stream_app.decisions import DecisionPolicy
from stream_app.lists import ListTable
from stream_app.reasons import load_catalog
from stream_app.scoring import Scorer
from tests.support.models import sample_rows, train_booster

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def batch() -> list[Transaction]:
    return [Transaction.model_validate({**row, "tx_id": f"d{i}"}) for i, row in enumerate(sample_rows())]


@pytest.fixture(scope="module")
def model(batch: list[Transaction]) -> LoadedModel:
    """A real model whose block threshold and review threshold both cut the sample's scores somewhere inside."""
    plain = LoadedModel("m", "1", 0.5, "pre_settlement", train_booster(20), feature_names())
    scores = np.unique(Scorer(plain).score(batch).scores)  # sorted, distinct
    middle = len(scores) // 2
    block, review = float(scores[-6:-4].mean()), float(scores[middle : middle + 2].mean())
    assert 0 < review < block < 1
    return dataclasses.replace(plain, threshold=block, review_threshold=review)


def decisions(scorer: Scorer, batch: list[Transaction]) -> list[str]:
    return [parse_verdict(v).decision for v in scorer.score(batch, now=NOW).verdicts]


def test_review_tier_on_gives_review_between_the_two_thresholds(model: LoadedModel, batch: list[Transaction]) -> None:
    scorer = Scorer(model, policy=DecisionPolicy(review_tier=True))
    scored = scorer.score(batch, now=NOW)
    assert model.review_threshold is not None
    for verdict, score in zip(map(parse_verdict, scored.verdicts), scored.scores.tolist(), strict=True):
        expected = "block" if score >= model.threshold else "review" if score >= model.review_threshold else "allow"
        assert verdict.decision == expected
        assert (verdict.review_threshold, verdict.decided_by) == (model.review_threshold, "model")
        if verdict.decision != "allow":
            assert verdict.reasons, "reviewed and blocked verdicts say why"
    assert {"allow", "review", "block"} <= set(decisions(scorer, batch))
    assert int(scored.reviewed.sum()) == decisions(scorer, batch).count("review")


def test_review_tier_off_gives_exactly_the_old_block_allow_verdicts(
    model: LoadedModel, batch: list[Transaction]
) -> None:
    off = Scorer(model, policy=DecisionPolicy(review_tier=False)).score(batch, now=NOW)
    without = Scorer(dataclasses.replace(model, review_threshold=None)).score(batch, now=NOW)
    assert off.verdicts == without.verdicts, "byte for byte the verdicts of a version without a review threshold"
    assert [parse_verdict(v).decision for v in off.verdicts] == [
        "block" if s >= model.threshold else "allow" for s in off.scores.tolist()
    ]
    assert not off.reviewed.any() and all(orjson.loads(v)["review_threshold"] is None for v in off.verdicts)
    # The tier on but a version without a review threshold: block/allow too.
    tier_on = Scorer(dataclasses.replace(model, review_threshold=None), policy=DecisionPolicy(review_tier=True))
    assert tier_on.score(batch, now=NOW).verdicts == without.verdicts


def test_an_allow_entry_lets_through_what_the_model_blocks_and_a_block_entry_blocks_what_it_allows(
    model: LoadedModel, batch: list[Transaction]
) -> None:
    table = ListTable()
    scorer = Scorer(model, policy=DecisionPolicy(review_tier=True, lists=table))
    plain = scorer.score(batch, now=NOW)
    blocked = next(i for i, b in enumerate(plain.blocked.tolist()) if b)
    allowed = next(i for i, b in enumerate((~plain.blocked & ~plain.reviewed).tolist()) if b)
    reviewed = next(i for i, b in enumerate(plain.reviewed.tolist()) if b)
    for i, action in ((blocked, "allow"), (allowed, "block"), (reviewed, "allow")):
        table.put(
            ListEntry(
                account=batch[i].name_orig,
                action=action,
                direction="orig",
                reason=f"desk says {action}",
                added_by="desk",
                added_at=NOW,
                expires_at=NOW + timedelta(hours=1),
            )
        )
    listed = scorer.score(batch, now=NOW)
    for i, action in ((blocked, "allow"), (allowed, "block"), (reviewed, "allow")):
        verdict = parse_verdict(listed.verdicts[i])
        assert verdict.decision == action and verdict.decided_by == "list"
        assert verdict.list_entry is not None and verdict.list_entry.reason == f"desk says {action}"
        assert verdict.list_entry.account == batch[i].name_orig and verdict.list_entry.side == "orig"
        assert verdict.score == plain.scores[i], "the model's score is still given"
    untouched = {i for i, tx in enumerate(batch) if tx.name_orig not in table.orig}
    assert all(listed.verdicts[i] == plain.verdicts[i] for i in untouched)
    assert sum(listed.listed.values()) == len(batch) - len(untouched)
    assert bool(listed.blocked[allowed]) and not listed.blocked[blocked]
    # An hour later the entries have expired: the model decides again.
    later = scorer.score(batch, now=NOW + timedelta(hours=1))
    assert [parse_verdict(v).decided_by for v in later.verdicts] == ["model"] * len(batch)


def test_a_verdict_made_after_event_time_plus_the_deadline_is_marked_late(model: LoadedModel) -> None:
    rows = sample_rows()[:3]
    made = [
        Transaction.model_validate({**rows[i], "tx_id": f"l{i}", "event_time": (NOW - age).timestamp()})
        for i, age in enumerate((timedelta(milliseconds=100), timedelta(milliseconds=501), timedelta(seconds=30)))
    ]
    undated = Transaction.model_validate({**rows[0], "tx_id": "undated"})
    scorer = Scorer(model, policy=DecisionPolicy(deadline_s=0.5))
    scored = scorer.score([*made, undated], now=NOW)
    assert scored.late.tolist() == [False, True, True, False], "no event time: never late"
    assert [parse_verdict(v).late for v in scored.verdicts] == [False, True, True, False]
    # The pipeline's clock (its Kafka timestamp when there is no event time) decides when given.
    started = np.array([NOW.timestamp()] * 3 + [(NOW - timedelta(seconds=2)).timestamp()])
    assert scorer.score([*made, undated], now=NOW, started_at=started).late.tolist() == [False] * 3 + [True]
    assert not Scorer(model).score(made, now=NOW).late.any(), "no deadline: never late"


def test_reasons_carry_a_code_and_the_catalog_text(model: LoadedModel, batch: list[Transaction]) -> None:
    english = load_catalog()
    verdicts = [parse_verdict(v) for v in Scorer(model).score(batch, now=NOW).verdicts]
    reasons = [r for v in verdicts for r in v.reasons]
    assert reasons
    for reason in reasons:
        assert reason.code == reason.feature.upper() + ("_RAISES" if reason.contribution > 0 else "_LOWERS")
        assert reason.text == english.texts[reason.code]
