"""The scored-transaction log on the real broker: a real scorer writes the records, `momoguard log-sink` keeps them."""

from __future__ import annotations

import signal
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from confluent_kafka import Producer

from feedback.log import read_scored, scan_scored
from feedback.store import REJECTED, LogStore
from schemas.features import build_features
from schemas.frame import FRAME_SCHEMA
from stream_app.process import ScorerProcess as Process
from tests.support.harness import (
    ScorerEnv,
    ScorerProcess,
    messages,
    offline_scores,
    produce,
    produce_in_background,
    transactions,
    until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def logged_rows(env: ScorerEnv) -> int:
    return read_scored(env.settings.feedback_dir, ["score"]).height


def test_twenty_thousand_transactions_are_logged_once_each_with_the_scorers_features_across_a_sink_crash(
    scorer_env: ScorerEnv, scorer: ScorerProcess, start_sink: Callable[[], Process]
) -> None:
    s = scorer_env.settings
    txs = transactions(20_000, "logged")
    sender = produce_in_background(s.kafka_bootstrap, s.topic_transactions, messages(txs[:10_000]), rate=4_000)
    sink = start_sink()
    root = s.feedback_dir
    # Killed mid-run, once it has written a part: its uncommitted rows come again to the next sink, and the second
    # half of the replay is sent only after the kill.
    until(lambda: 0 < logged_rows(scorer_env), "the sink writes its first part", timeout=120)
    assert sink.stop(signal.SIGKILL) == -signal.SIGKILL
    sender.join()
    produce(s.kafka_bootstrap, s.topic_transactions, messages(txs[10_000:]))
    again = start_sink()
    until(lambda: logged_rows(scorer_env) == 20_000, "every transaction in the log", timeout=180)
    assert again.stop() == 0, again.log_tail()

    raw = scan_scored(root)
    assert raw is not None
    written = raw.select("tx_id").collect().height
    log = read_scored(root)
    assert log.height == 20_000 and log["tx_id"].n_unique() == 20_000 <= written
    assert set(log["tx_id"]) == {str(tx["tx_id"]) for tx in txs}

    # The features are the very ones the scorer scored: equal to the shared feature function's, as are the scores.
    by_id = log.sort("tx_id")
    frame = pl.DataFrame([{k: tx.get(k) for k in FRAME_SCHEMA} for tx in txs], schema=FRAME_SCHEMA, strict=False)
    frame = frame.sort("tx_id")
    assert by_id["tx_id"].to_list() == frame["tx_id"].to_list()
    logged = np.vstack(by_id["features"].to_list())
    assert np.array_equal(logged, build_features(frame, "pre_settlement"))
    expected = offline_scores(s, txs, "1")
    assert np.allclose(by_id["score"].to_numpy(), [expected[t] for t in by_id["tx_id"]], rtol=0, atol=1e-9)
    assert set(by_id["model_version"]) == {"1"} and by_id["shadow_score"].null_count() == 20_000
    assert set(by_id["decision"]) <= {"block", "allow"}
    assert (by_id["decision"] == "block").to_list() == (by_id["score"] >= by_id["threshold"]).to_list()
    assert list(root.glob("scored/day=*/*.parquet"))  # partitioned by day


def test_unreadable_records_on_the_scored_and_labels_topics_are_kept_aside_and_the_sink_goes_on(
    scorer_env: ScorerEnv, scorer: ScorerProcess, start_sink: Callable[[], Process]
) -> None:
    s = scorer_env.settings
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "acks": "all"})
    producer.produce(s.topic_scored, value=b"not arrow")
    producer.produce(s.topic_labels, value=b'{"tx_id": "x", "is_fraud": "perhaps"}')
    producer.produce(s.topic_labels, value=b"\xff\xfe")
    assert producer.flush(30) == 0
    sink = start_sink()
    txs = transactions(500, "after-bad")
    produce(s.kafka_bootstrap, s.topic_transactions, messages(txs))
    until(lambda: logged_rows(scorer_env) == 500, "the good transactions in the log", timeout=120)
    store = LogStore(s.feedback_dir)
    until(
        lambda: store.parts(REJECTED) and pl.read_parquet(store.parts(REJECTED)).height == 3, "3 kept aside", timeout=60
    )
    assert sink.proc.poll() is None, "a bad record is never fatal"
    assert sink.stop() == 0, sink.log_tail()
    rejected = pl.read_parquet(store.parts(REJECTED))
    assert sorted(rejected["reason"]) == ["not_label", "not_label", "not_scored_record"]
    assert set(rejected["value"]) == {b"not arrow", b'{"tx_id": "x", "is_fraud": "perhaps"}', b"\xff\xfe"}
    assert "rejected" in sink.log_tail()
