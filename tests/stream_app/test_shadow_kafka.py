"""The shadow challenger on live traffic: set while transactions flow, it scores every one from then on, decides none,
and `momoguard models compare` counts what a hand count of the labelled rows gives."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer

from core.settings import Settings
from feedback.log import read_labels, read_scored
from stream_app.process import ScorerProcess as Process
from tests.support.cli import run_momoguard
from tests.support.harness import (
    Collected,
    ScorerEnv,
    ScorerProcess,
    collect,
    messages,
    offline_scores,
    produce,
    produce_in_background,
    until,
)
from tests.support.models import register_model
from tests.support.traffic import phases, write_label_csv
from tests.support.waiting import scorer_metric

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def positions(settings: Settings, expect: int) -> dict[str, tuple[int, int]]:
    """Each transaction's (partition, offset) on the transactions topic."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"pos-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([settings.topic_transactions])
    found: dict[str, tuple[int, int]] = {}
    try:
        until(lambda: _read(consumer, found) >= expect, f"{expect} transactions read back", timeout=60, every=0)
    finally:
        consumer.close()
    return found


def _read(consumer: Consumer, found: dict[str, tuple[int, int]]) -> int:
    for message in consumer.consume(1000, timeout=0.5):
        if not message.error():
            found[str(orjson.loads(message.value())["tx_id"])] = (message.partition(), message.offset())
    return len(found)


def by_id(got: Collected) -> dict[str, dict[str, object]]:
    return {str(v["tx_id"]): v for v in got.values}


def test_a_challenger_set_mid_traffic_shadows_every_later_transaction_once_and_compare_matches_a_hand_count(
    scorer_env: ScorerEnv,
    own_registry: Settings,
    start_scorer: Callable[..., ScorerProcess],
    start_sink: Callable[[], Process],
    tmp_path: Path,
) -> None:
    s = own_registry
    challenger = register_model(s, rounds=8, threshold=0.2, tmp=tmp_path, champion=False)
    assert challenger == "2"
    scorer = start_scorer()
    scorer.wait_ready()
    sink = start_sink()
    before, after = phases(1, 3_000, 150, "flowing")[0], phases(1, 2_000, 100, "shadowed")[0]
    sender = produce_in_background(s.kafka_bootstrap, s.topic_transactions, messages(before), rate=600)
    done = run_momoguard("models", "challenger", challenger, env=scorer_env.env)
    assert done.returncode == 0 and "version 2 is challenger (was none)" in done.stdout, done.stderr
    web = scorer_env.web
    until(lambda: scorer_metric(web, "momoguard_shadow_model_info", model_version="2") == 1, "shadowing starts")
    sender.join()
    produce(s.kafka_bootstrap, s.topic_transactions, messages(after))
    txs = before + after

    verdicts = by_id(collect(s.kafka_bootstrap, s.topic_verdicts, expect=5_000))
    got = collect(s.kafka_bootstrap, s.topic_shadow, expect=len(after))
    shadow = by_id(got)
    assert len(verdicts) == 5_000 and len(shadow) == len(got.values), "one verdict, at most one shadow verdict each"
    assert {str(tx["tx_id"]) for tx in after} <= set(shadow), "every transaction after the switch is shadowed"
    champion_scores, challenger_scores = offline_scores(s, txs, "1"), offline_scores(s, txs, challenger)
    for tx_id, verdict in verdicts.items():  # the verdicts are the champion's alone, as without a challenger
        assert verdict["model_version"] == "1" and abs(float(verdict["score"]) - champion_scores[tx_id]) <= 1e-9
    for tx_id, verdict in shadow.items():
        assert verdict["model_version"] == "2" and abs(float(verdict["score"]) - challenger_scores[tx_id]) <= 1e-9
    # From the switch on, in each partition's order: the shadowed transactions of a partition are its last ones.
    at = positions(s, 5_000)
    per_partition: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for tx_id, (partition, offset) in at.items():
        per_partition[partition].append((offset, tx_id in shadow))
    for partition, rows in per_partition.items():
        flags = [flag for _, flag in sorted(rows)]
        first = flags.index(True)
        assert all(flags[first:]), f"partition {partition}: a transaction after the switch was not shadowed"
    assert any(tx_id not in shadow for tx_id in verdicts), "the challenger was set while transactions flowed"

    # Cleared: the scorer stops shadowing from its next poll, and later traffic gets no shadow verdicts.
    done = run_momoguard("models", "challenger", "--clear", env=scorer_env.env)
    assert done.returncode == 0 and "no challenger now (was 2)" in done.stdout, done.stderr
    until(lambda: scorer_metric(web, "momoguard_shadow_model_info", model_version="2") == 0, "shadowing stops")
    late = phases(1, 500, 10, "cleared")[0]
    produce(s.kafka_bootstrap, s.topic_transactions, messages(late))
    assert len(by_id(collect(s.kafka_bootstrap, s.topic_verdicts, expect=5_500))) == 5_500
    assert len(collect(s.kafka_bootstrap, s.topic_shadow, expect=len(got.values)).values) == len(got.values)

    # Label 200 shadowed rows (fraud and genuine) and one unshadowed, then compare against a hand count.
    shadowed_txs = [tx for tx in txs if str(tx["tx_id"]) in shadow]
    frauds = [str(tx["tx_id"]) for tx in shadowed_txs if tx["isFraud"] == 1][:60]
    genuine = [str(tx["tx_id"]) for tx in shadowed_txs if tx["isFraud"] == 0][:140]
    unshadowed = next(tx_id for tx_id in verdicts if tx_id not in shadow)
    rows = [(t, True) for t in frauds] + [(t, False) for t in genuine] + [(unshadowed, True)]
    labels = write_label_csv(tmp_path / "labels.csv", rows, "chargeback")
    done = run_momoguard("label", "--csv", str(labels), env=scorer_env.env)
    assert done.returncode == 0, done.stderr
    until(lambda: read_labels(s.feedback_dir).height == 201, "the labels logged", timeout=60)
    until(lambda: read_scored(s.feedback_dir, ["score"]).height == 5_500, "the traffic logged", timeout=60)
    assert sink.stop() == 0 and scorer.stop() == 0

    done = run_momoguard("models", "compare", "--challenger", "2", "--json", env=scorer_env.env)  # cleared since
    assert done.returncode == 0, done.stderr
    live = orjson.loads(done.stdout)
    amounts = {str(tx["tx_id"]): float(tx["amount"]) for tx in txs}  # type: ignore[arg-type]
    truth = dict.fromkeys(frauds, True) | dict.fromkeys(genuine, False)
    assert (live["rows"], live["labelled"], live["labelled_fraud"]) == (len(shadow), 200, 60)
    disagree = sum(verdicts[t]["decision"] != shadow[t]["decision"] for t in shadow)
    assert live["disagreements"] == disagree and live["agreement"] == pytest.approx(1 - disagree / len(shadow))
    for side, decided in (("champion", verdicts), ("challenger", shadow)):
        blocked = {t for t in truth if decided[t]["decision"] == "block"}
        tp = sum(truth[t] for t in blocked)
        fp, fn = len(blocked) - tp, len(frauds) - tp
        figures = live[side]
        assert (figures["true_positives"], figures["false_positives"], figures["false_negatives"]) == (tp, fp, fn)
        assert figures["precision"] == pytest.approx(tp / len(blocked) if blocked else 0.0)
        assert figures["recall"] == pytest.approx(tp / len(frauds))
        assert figures["false_block_rate"] == pytest.approx(fp / len(genuine))
        caught = sum(amounts[t] for t in blocked if truth[t]) / sum(amounts[t] for t in frauds)
        assert figures["fraud_amount_recall"] == pytest.approx(caught)
    assert live["challenger_version"] == "2" and live["champion"]["versions"] == "1"
