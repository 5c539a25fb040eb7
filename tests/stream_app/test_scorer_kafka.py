"""The scorer against the real broker and a real registry: every transaction answered once, bad ones dead-lettered."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest

import registry
from core.settings import Settings
from schemas.verdict import VERDICT
from tests.support.cli import run_momoguard
from tests.support.harness import (
    ScorerEnv,
    ScorerProcess,
    collect,
    messages,
    offline_scores,
    produce,
    produce_in_background,
    transactions,
)
from tests.support.models import register_model
from tests.support.waiting import metric, scorer_metric, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_ten_thousand_transactions_get_exactly_one_verdict_each_with_offline_scores(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]
) -> None:
    s = scorer_env.settings
    scorer = start_scorer()
    ready = scorer.wait_ready()
    assert ready["ready"] is True and ready["model_version"] == "1"
    txs = transactions(10_000, "parity")
    produce(s.kafka_bootstrap, s.topic_transactions, messages(txs))

    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=10_000)
    ids = [str(v["tx_id"]) for v in got.values]
    assert len(ids) == 10_000 and len(set(ids)) == 10_000
    assert set(ids) == {str(tx["tx_id"]) for tx in txs}

    expected = offline_scores(s, txs, "1")
    by_id = {str(tx["tx_id"]): tx for tx in txs}
    for value, key in zip(got.values, got.keys, strict=True):
        verdict = VERDICT.validate_python(value)
        assert abs(verdict.score - expected[verdict.tx_id]) <= 1e-9, "training/serving parity"
        assert verdict.decision == ("block" if verdict.score >= verdict.threshold else "allow")
        assert (verdict.model_name, verdict.model_version, verdict.threshold) == (s.model_name, "1", 0.5)
        assert key == str(by_id[verdict.tx_id]["nameOrig"]).encode(), "verdicts are keyed like the input"
        if verdict.decision == "block":
            assert 1 <= len(verdict.reasons) <= 3
    assert any(v["decision"] == "block" for v in got.values) and any(v["decision"] == "allow" for v in got.values)

    # The counters follow the deliveries: read them until they hold, rather than once.
    web, scored = scorer_env.web, "momoguard_transactions_scored_total"
    wait_until("transactions scored", lambda: scorer_metric(web, scored), lambda n: n == 10_000)
    latencies = "momoguard_end_to_end_latency_seconds_count"
    wait_until("latencies observed", lambda: scorer_metric(web, latencies), lambda n: n == 10_000)
    metrics = urlopen_text(f"{scorer_env.web}/metrics")
    assert metric(metrics, "momoguard_model_info", model_name="momoguard-fraud", model_version="1") == 1
    assert 'momoguard_consumer_lag{partition="0"' in metrics
    assert scorer.stop() == 0


def urlopen_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_malformed_messages_go_to_the_dead_letter_topic_and_valid_ones_are_scored(
    scorer_env: ScorerEnv, scorer: ScorerProcess
) -> None:
    s = scorer_env.settings
    good = transactions(60, "mixed")
    base = dict(good[0])
    bad: dict[str, bytes] = {
        "not_json": b"{this is not json",
        "not_utf8": b'{"tx_id": "\xff\xfe"}',
        "wrong_type": orjson.dumps({**base, "tx_id": "bad-type", "step": "yesterday"}),
        "missing_field": orjson.dumps({k: v for k, v in base.items() if k != "amount"}),
        "not_finite": orjson.dumps({**base, "tx_id": "inf", "amount": 0.5}).replace(b"0.5", b"1e999"),
        "out_of_range": orjson.dumps({**base, "tx_id": "neg", "amount": -10}),
        "unknown_type": orjson.dumps({**base, "tx_id": "refund", "type": "REFUND"}),
        "too_large": orjson.dumps({**base, "tx_id": "big", "memo": "x" * 20_000}),
        "not_object": orjson.dumps([base]),
        "empty": b"",
    }
    batch: list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]] = []
    for i, tx in enumerate(good):
        batch.append((str(tx["nameOrig"]).encode(), orjson.dumps(tx), None))
        if i % 6 == 0 and i // 6 < len(bad):
            reason = list(bad)[i // 6]
            batch.append((b"k-" + reason.encode(), bad[reason], [("trace-id", reason.encode())]))
    produce(s.kafka_bootstrap, s.topic_transactions, batch)

    verdicts = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(good))
    assert sorted(str(v["tx_id"]) for v in verdicts.values) == sorted(str(tx["tx_id"]) for tx in good)
    dead = collect(s.kafka_bootstrap, s.topic_dlq, expect=len(bad), decode=False)
    assert len(dead.raw) == len(bad)
    for raw, key, headers in zip(dead.raw, dead.keys, dead.headers, strict=True):
        reason = headers["momoguard.reason"].decode()
        assert headers["trace-id"].decode() == reason, "original headers kept; the reason is the right one"
        assert (raw or b"") == bad[reason], "original bytes kept"
        assert key == b"k-" + reason.encode()
        assert headers["momoguard.error"]
        assert headers["momoguard.source.topic"].decode() == s.topic_transactions
        assert int(headers["momoguard.source.partition"]) in range(4)
        assert int(headers["momoguard.source.offset"]) >= 0

    def invalid() -> dict[str, float]:
        metrics = urlopen_text(f"{scorer_env.web}/metrics")
        return {reason: metric(metrics, "momoguard_invalid_messages_total", reason=reason) for reason in bad}

    wait_until("dead letters counted by reason", invalid, lambda counted: set(counted.values()) == {1.0})
    assert scorer.stop() == 0


def test_a_new_champion_is_picked_up_while_transactions_flow(
    scorer_env: ScorerEnv,
    scorer: ScorerProcess,
    champion_registry: Settings,
    tmp_path: Path,
) -> None:
    s = scorer_env.settings
    txs = transactions(12_000, "reload")
    sender = produce_in_background(s.kafka_bootstrap, s.topic_transactions, messages(txs), 1000)
    try:
        time.sleep(3)
        new_version = register_model(champion_registry, rounds=80, threshold=0.4, tmp=tmp_path)
    finally:
        sender.join()
    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(txs))
    ids = Counter(str(v["tx_id"]) for v in got.values)
    assert len(ids) == len(txs) and max(ids.values()) == 1, "nothing lost, nothing scored twice"
    versions = Counter(str(v["model_version"]) for v in got.values)
    assert set(versions) == {"1", new_version}, versions
    # After the swap every verdict comes from the new version, with its own threshold.
    assert all(v["threshold"] == 0.4 for v in got.values if v["model_version"] == new_version)
    reloads = "momoguard_model_reloads_total"
    wait_until("reloads", lambda: scorer_metric(scorer_env.web, reloads, outcome="loaded"), lambda n: n == 1)
    info = scorer_metric(scorer_env.web, "momoguard_model_info", model_version=new_version)
    assert info == 1
    assert scorer.stop() == 0
    registry.make_champion(champion_registry, "1", "restore the session champion")


def test_sigterm_mid_stream_then_restart_answers_every_transaction(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], scorer: ScorerProcess
) -> None:
    s = scorer_env.settings
    txs = transactions(15_000, "sigterm")
    sender = produce_in_background(s.kafka_bootstrap, s.topic_transactions, messages(txs), 3000)
    time.sleep(2.5)
    assert scorer.stop(signal.SIGTERM) == 0, "a SIGTERM finishes the batch in flight, commits and exits 0"
    sender.join()
    second = start_scorer()
    second.wait_ready()
    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(txs))
    ids = Counter(str(v["tx_id"]) for v in got.values)
    assert set(ids) == {str(tx["tx_id"]) for tx in txs}, "every transaction has at least one verdict"
    assert second.stop() == 0


def test_without_a_champion_the_worker_exits_with_one_line(scorer_env: ScorerEnv, tmp_path: Path) -> None:
    env = {
        **scorer_env.env,
        "MOMOGUARD_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}",
        "MOMOGUARD_MODEL_NAME": "nobody-trained-me",
    }
    done = run_momoguard("serve", env=env, timeout=180)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "make train" in last and "no champion" in last


def test_scores_match_between_one_row_batches_and_whole_batches(champion_registry: Settings) -> None:
    from schemas.transaction import Transaction
    from stream_app.scoring import Scorer

    model = registry.load_champion(champion_registry)
    scorer = Scorer(model, reasons=3, explain_min_score=0.0)
    txs = [Transaction.model_validate(tx) for tx in transactions(300, "batch")]
    whole = scorer.score(txs)
    single = np.concatenate([scorer.score([tx]).scores for tx in txs])
    assert np.array_equal(whole.scores, single)
    assert [orjson.loads(v)["reasons"] for v in whole.verdicts] == [
        orjson.loads(scorer.score([tx]).verdicts[0])["reasons"] for tx in txs
    ]


def test_two_workers_share_the_partitions_of_one_group(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]
) -> None:
    s = scorer_env.settings
    supervisor = start_scorer("--workers", "2")
    supervisor.wait_ready()
    deadline = time.monotonic() + 90
    assigned: list[set[str]] = []
    while time.monotonic() < deadline:
        try:
            views = [orjson.loads(urlopen_text(f"http://127.0.0.1:{s.web_port + i}/ready")) for i in range(2)]
        except OSError:
            time.sleep(0.5)
            continue
        assigned = [set(view["partitions"]) for view in views]
        if all(assigned) and sum(len(a) for a in assigned) == 4:
            break
        time.sleep(0.5)
    assert len(assigned) == 2 and all(assigned), assigned
    assert not assigned[0] & assigned[1] and len(assigned[0] | assigned[1]) == 4
    txs = transactions(3000, "two")
    produce(s.kafka_bootstrap, s.topic_transactions, messages(txs))
    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(txs))
    assert sorted(str(v["tx_id"]) for v in got.values) == sorted(str(tx["tx_id"]) for tx in txs)
    assert supervisor.stop() == 0
