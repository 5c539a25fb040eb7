"""The bulk path on the real broker: every transaction answered once through fetches, takeovers and a crash.

A graceful rebalance (a worker SIGTERMed while another takes over, a third joining) must not score anything
twice: the bulk consumer commits what it answered before giving partitions up. A SIGKILL redoes at most
MOMOGUARD_IN_FLIGHT_WINDOW transactions.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

import pytest

from stream_app.process import get_json
from tests.support import harness
from tests.support.harness import ScorerEnv, ScorerProcess, held

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def counted(ids: list[str], sent: list[dict[str, object]]) -> tuple[int, int]:
    """(missing, duplicates) of verdict tx_ids against what was sent."""
    seen = Counter(ids)
    missing = sum(1 for tx in sent if str(tx["tx_id"]) not in seen)
    return missing, sum(n - 1 for n in seen.values())


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_fifty_thousand_transactions_answered_once_in_whole_fetches_with_offline_scores(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], scorer: ScorerProcess
) -> None:
    s = scorer_env.settings
    txs = harness.transactions(50_000, "bulk")
    harness.produce(s.kafka_bootstrap, s.topic_transactions, harness.messages(txs))

    got = harness.collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(txs), timeout=300)
    ids = [str(v["tx_id"]) for v in got.values]
    assert counted(ids, txs) == (0, 0), "every tx_id exactly once"
    expected = harness.offline_scores(s, txs, "1")
    worst = max(abs(float(v["score"]) - expected[str(v["tx_id"])]) for v in got.values)  # type: ignore[arg-type]
    assert worst <= 1e-9, f"training/serving parity: worst difference {worst}"
    harness.wait_committed_to_end(s)

    import urllib.request

    with urllib.request.urlopen(f"{scorer_env.web}/metrics", timeout=5) as response:
        text = response.read().decode()
    batches = metric(text, "momoguard_batch_size_count")
    assert metric(text, "momoguard_batch_size_sum") == 50_000
    assert batches < 50_000 / 5, f"fetches reach the scorer whole, not message by message ({batches:.0f} batches)"
    harness.until(lambda: get_json(f"{scorer_env.web}/health")["lag"] == 0, "lag back to 0 from the watermarks")
    assert scorer.stop() == 0


def _takeover_run(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], run: str, change: Callable[[], None]
) -> tuple[int, int]:
    """Two workers sharing the partitions, traffic flowing, `change` mid-stream; (missing, duplicates)."""
    s = scorer_env.settings
    start_scorer()
    start_scorer("--worker-index", "1")
    harness.until(lambda: held(scorer_env, 0) and held(scorer_env, 1), "both workers hold partitions", timeout=120)
    txs = harness.transactions(40_000, run)
    sender = harness.produce_in_background(s.kafka_bootstrap, s.topic_transactions, harness.messages(txs), 8000)
    harness.until(
        lambda: harness.topic_size(s.kafka_bootstrap, s.topic_verdicts, 4) >= 10_000, "verdicts flow", timeout=60
    )
    change()
    sender.join()
    got = harness.collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(txs), timeout=180)
    harness.wait_committed_to_end(s)
    return counted([str(v["tx_id"]) for v in got.values], txs)


def test_one_of_two_workers_sigtermed_mid_stream_the_other_takes_over_without_a_duplicate(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]
) -> None:
    workers: list[ScorerProcess] = []

    def sigterm_the_second() -> None:
        second = workers[1]
        assert second.stop(signal.SIGTERM) == 0, "a SIGTERM drains, commits and exits 0"
        partitions = scorer_env.settings.transactions_partitions
        harness.until(
            lambda: len(held(scorer_env, 0)) == partitions, "the first worker holds every partition", timeout=60
        )

    def start(*args: str) -> ScorerProcess:
        workers.append(start_scorer(*args))
        return workers[-1]

    missing, duplicates = _takeover_run(scorer_env, start, "takeover", sigterm_the_second)
    print(f"BULK graceful takeover: missing {missing}, duplicates {duplicates}")
    assert (missing, duplicates) == (0, 0)
    assert workers[0].stop() == 0


def test_a_third_worker_joining_mid_stream_causes_no_duplicate(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], topic_factory: Callable[..., str]
) -> None:
    # Six partitions: Faust's sticky assignor leaves 2 + 2 of four as they are and gives a third worker nothing.
    topic = topic_factory("transactions", partitions=6)
    scorer_env.settings = scorer_env.settings.model_copy(
        update={"topic_transactions": topic, "transactions_partitions": 6}
    )
    scorer_env.env.update(MOMOGUARD_TOPIC_TRANSACTIONS=topic, MOMOGUARD_TRANSACTIONS_PARTITIONS="6")

    def third_joins() -> None:
        start_scorer("--worker-index", "2")
        harness.until(lambda: held(scorer_env, 2), "the third worker holds partitions", timeout=90)
        assert held(scorer_env, 0) and held(scorer_env, 1), "the first two gave partitions up and kept some"

    missing, duplicates = _takeover_run(scorer_env, start_scorer, "join", third_joins)
    print(f"BULK third worker joining: missing {missing}, duplicates {duplicates}")
    assert (missing, duplicates) == (0, 0)


def test_sigkill_mid_drain_then_restart_redoes_at_most_the_in_flight_window(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]
) -> None:
    s = scorer_env.settings
    window = 3000
    scorer_env.env["MOMOGUARD_IN_FLIGHT_WINDOW"] = str(window)
    txs = harness.transactions(100_000, "killed")
    harness.produce(
        s.kafka_bootstrap, s.topic_transactions, harness.messages(txs)
    )  # a backlog: the worker drains flat out
    first = start_scorer()
    harness.until(
        lambda: harness.topic_size(s.kafka_bootstrap, s.topic_verdicts, 4) >= 3000, "the drain is under way", 120, 0.05
    )
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    at_kill = harness.topic_size(s.kafka_bootstrap, s.topic_verdicts, 4)
    assert at_kill < len(txs), "the kill came mid-drain"
    second = start_scorer()
    got = harness.collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(txs), timeout=240)
    missing, duplicates = counted([str(v["tx_id"]) for v in got.values], txs)
    print(f"BULK SIGKILL mid-drain at {at_kill} verdicts, window {window}: missing {missing}, duplicates {duplicates}")
    assert missing == 0
    assert duplicates <= window, f"{duplicates} scored twice, more than the in-flight window of {window}"
    harness.wait_committed_to_end(s)
    assert second.stop() == 0
