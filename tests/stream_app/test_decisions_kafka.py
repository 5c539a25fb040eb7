"""Decisions on the real broker: the review tier on and off, translated reason texts, late verdicts after a stall."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from core.settings import Settings
from schemas.verdict import VERDICT, Verdict
from stream_app.reasons import load_catalog
from tests.support.harness import (
    ScorerEnv,
    ScorerProcess,
    collect,
    messages,
    produce,
    produce_in_background,
    transactions,
)
from tests.support.models import register_model, sample_rows
from tests.support.waiting import scorer_metric, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REVIEW_THRESHOLD = 0.002  # below the block threshold 0.5; a few dozen of the sample's first 3000 rows lie between


def verdicts(s: Settings, topic: str, expect: int) -> dict[str, Verdict]:
    got = collect(s.kafka_bootstrap, topic, expect=expect)
    found = {str(v["tx_id"]): VERDICT.validate_python(v) for v in got.values}
    assert len(found) == expect
    return found


def test_review_tier_on_gives_review_between_the_thresholds_and_off_gives_the_old_verdicts(
    scorer_env: ScorerEnv,
    start_scorer: Callable[..., ScorerProcess],
    topic_factory: Callable[..., str],
    tmp_path: Path,
) -> None:
    s = scorer_env.settings
    own = Settings(mlflow_tracking_uri=f"sqlite:///{tmp_path / 'review.db'}", run_dir=tmp_path)
    register_model(own, rounds=40, threshold=0.5, review_threshold=REVIEW_THRESHOLD, tmp=tmp_path)
    french = {"AMOUNT_RAISES": "Le montant a augmenté le risque."}
    (tmp_path / "fr.json").write_text(json.dumps({"language": "fr", "texts": french}), encoding="utf-8")
    scorer_env.env |= {
        "MOMOGUARD_MLFLOW_TRACKING_URI": own.mlflow_tracking_uri,
        "MOMOGUARD_REVIEW_TIER": "true",
        "MOMOGUARD_REASON_LANGUAGE": "fr",
        "MOMOGUARD_REASON_CATALOG_DIR": str(tmp_path),
    }
    txs = [{**row, "tx_id": f"band-{i}"} for i, row in enumerate(sample_rows()[:3000])]
    produce(s.kafka_bootstrap, s.topic_transactions, messages(txs))
    on_scorer = start_scorer()
    on_scorer.wait_ready()
    on = verdicts(s, s.topic_verdicts, len(txs))
    assert on_scorer.stop() == 0

    # The same transactions again, review tier off, by a new group into a topic of its own.
    off_topic = topic_factory("verdicts-off", partitions=4)
    scorer_env.env |= {
        "MOMOGUARD_REVIEW_TIER": "false",
        "MOMOGUARD_TOPIC_VERDICTS": off_topic,
        "MOMOGUARD_CONSUMER_GROUP": s.consumer_group + "-off",
    }
    off_scorer = start_scorer()
    off_scorer.wait_ready()
    off = verdicts(s, off_topic, len(txs))

    english = load_catalog()
    for tx_id, verdict in on.items():
        assert verdict.review_threshold == REVIEW_THRESHOLD and verdict.decided_by == "model"
        expected = "block" if verdict.score >= 0.5 else "review" if verdict.score >= REVIEW_THRESHOLD else "allow"
        assert verdict.decision == expected
        for reason in verdict.reasons:
            assert reason.text == french.get(reason.code, english.texts[reason.code]), "French, else English"
        old = off[tx_id]
        assert old.score == verdict.score and old.review_threshold is None
        assert old.decision == ("block" if old.score >= 0.5 else "allow")
    decisions = [v.decision for v in on.values()]
    assert {"allow", "review", "block"} == set(decisions)
    assert any(r.code == "AMOUNT_RAISES" for v in on.values() for r in v.reasons), "a translated text was used"
    assert [v.decision for v in off.values()].count("block") == decisions.count("block")
    web = scorer_env.web
    wait_until("review counted", lambda: scorer_metric(web, "momoguard_transactions_scored_total"), lambda n: n > 0)
    assert scorer_metric(web, "momoguard_transactions_scored_total", decision="review") == 0, "off: no review"
    assert scorer_metric(web, "momoguard_model_review_threshold") == 0
    assert off_scorer.stop() == 0


def test_a_stalled_scorer_writes_late_verdicts_after_it_resumes_and_counts_them(
    scorer_env: ScorerEnv, scorer: ScorerProcess
) -> None:
    s = scorer_env.settings
    # No event_time: each transaction's clock starts at its Kafka timestamp, taken as it is sent.
    txs = [{k: v for k, v in tx.items() if k != "event_time"} for tx in transactions(2000, "stall")]
    sender = produce_in_background(s.kafka_bootstrap, s.topic_transactions, messages(txs), 250)
    try:
        time.sleep(2)
        os.kill(scorer.pid, signal.SIGSTOP)
        time.sleep(3)  # what is sent now waits at least until the resume: more than the 500 ms deadline
    finally:
        os.kill(scorer.pid, signal.SIGCONT)
        sender.join()
    found = verdicts(s, s.topic_verdicts, len(txs))
    sent = collect(s.kafka_bootstrap, s.topic_transactions, expect=len(txs))
    sent_at = {str(orjson.loads(raw)["tx_id"]): ts for raw, ts in zip(sent.raw, sent.timestamps, strict=True)}
    late = [v for v in found.values() if v.late]
    assert late, "the stall made verdicts late"
    for tx_id, verdict in found.items():
        waited = verdict.scored_at.timestamp() - sent_at[tx_id]
        if abs(waited - 0.5) > 0.005:  # clear of the rounding of the two clocks
            assert verdict.late == (waited > 0.5), (tx_id, waited)
    wait_until(
        "late verdicts counted",
        lambda: scorer_metric(scorer_env.web, "momoguard_late_verdicts_total"),
        lambda n: n == len(late),
    )
    assert scorer.health()["status"] == "alive"
    assert scorer.stop() == 0
