"""The account tables against the real broker and registry: a replayed repeat-client month scores as offline
scoring of the same rows does (1e-9), and a restarted worker resumes its tables from the changelog."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from core.settings import Settings
from kafka_ops import topics
from paysim.generator import generate
from registry import load_version
from schemas.account_state import STATE_FEATURE_NAMES, credits_destination, in_stream_order, offline_features
from schemas.transaction import PAYSIM_COLUMNS
from tests.support.harness import ScorerEnv, ScorerProcess, collect, held, produce, until, wait_committed_to_end
from tests.support.harness import messages as harness_messages
from tests.support.models import register_model
from tests.support.waiting import scorer_metric, scorer_metrics, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SCORED = "momoguard_transactions_scored_total"


@pytest.fixture
def accounts_env(scorer_env: ScorerEnv, topic_factory: Callable[..., str], own_registry: object) -> Iterator[ScorerEnv]:
    """The test's scorer with account tables: its credits and changelog topics, its own registry and run dir."""
    s = scorer_env.settings
    credits = topic_factory("credits", partitions=s.transactions_partitions)
    scorer_env.settings = s.model_copy(update={"topic_credits": credits, "feature_set": "account_state"})
    scorer_env.env |= {"MOMOGUARD_TOPIC_CREDITS": credits, "MOMOGUARD_FEATURE_SET": "account_state"}
    with changelog_of(scorer_env.settings):
        yield scorer_env


@contextmanager
def changelog_of(s: Settings) -> Iterator[str]:
    """The group's account changelog topic, whose name follows the group's (Faust's naming): made here, deleted
    after the test."""
    changelog = topics.account_changelog(s)
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    spec = NewTopic(changelog, s.transactions_partitions, 1, config=dict(topics.CHANGELOG_CONFIG))
    admin.create_topics([spec])[changelog].result(30)
    try:
        yield changelog
    finally:
        admin.delete_topics([changelog])[changelog].result(30)


def state_model(env: ScorerEnv, tmp: Path) -> str:
    """A champion of the account_state feature set whose scores lean on the state: trained on a repeat-client
    month to tell accounts that came back and mules cashing out from the rest."""
    train = generate(steps=120, scale=0.01, seed=21, repeat_clients=True)
    state = offline_features(train)
    column = STATE_FEATURE_NAMES.index
    y = ((state[:, column("orig_tx_24h")] >= 1) | (state[:, column("received_24h")] > 0)).astype(np.int8)
    y ^= (np.random.default_rng(0).random(y.size) < 0.1).astype(np.int8)  # noise: scores between 0 and 1
    version = register_model(env.settings, 30, 0.5, tmp, feature_set="account_state", frame=train, y=y)
    booster = load_version(env.settings, version).booster
    gains = dict(zip(booster.feature_name(), booster.feature_importance("gain").tolist(), strict=True))
    assert sum(gains[name] for name in STATE_FEATURE_NAMES) > 0.5 * sum(gains.values())  # the state matters
    return version


def replay_by_step(env: ScorerEnv, month: pl.DataFrame, run: str, before: tuple[int, int] = (0, 0)) -> None:
    """Send the month step by step, in stream order; before each step, wait until the worker has scored every
    earlier row and applied every earlier credit (the offline rule: a credit counts from the next step on)."""
    s = env.settings
    scored, credited = before
    for (step,), rows in in_stream_order(month).group_by("step", maintain_order=True):
        produce(s.kafka_bootstrap, s.topic_transactions, messages(rows, run))
        scored += rows.height
        credited += sum(credits_destination(t, d) for t, d in zip(rows["type"], rows["nameDest"], strict=True))

        def progress() -> tuple[float, float]:
            total = scorer_metric(env.web, "momoguard_transactions_scored_total")
            return total, scorer_metric(env.web, "momoguard_account_events_total", event="credit_applied")

        def done(got: tuple[float, float], scored: int = scored, credited: int = credited) -> bool:
            return got[0] >= scored and got[1] >= credited

        wait_until(f"step {step} scored and credited", progress, done)


def messages(rows: pl.DataFrame, run: str) -> list[tuple[bytes | None, bytes, None]]:
    """The rows as the operator publishes them (harness.messages), tx_ids prefixed with the run."""
    txs = rows.select("tx_id", *PAYSIM_COLUMNS).to_dicts()
    return harness_messages([{**tx, "tx_id": f"{run}-{tx['tx_id']}"} for tx in txs])


def verdict_scores(env: ScorerEnv, expect: int) -> dict[str, float]:
    got = collect(env.settings.kafka_bootstrap, env.settings.topic_verdicts, expect)
    ids = [v["tx_id"] for v in got.values]
    assert len(ids) == expect and len(set(ids)) == expect  # every verdict, once
    return {v["tx_id"]: v["score"] for v in got.values}


def test_a_replayed_month_scores_as_offline_and_a_restart_resumes_from_the_changelog(
    accounts_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], tmp_path: Path
) -> None:
    env = accounts_env
    version = state_model(env, tmp_path)
    month = generate(steps=40, scale=0.005, seed=8, repeat_clients=True)
    first, second = month.filter(pl.col("step") <= 24), month.filter(pl.col("step") > 24)

    worker = start_scorer()
    assert worker.wait_ready()["model_version"] == version
    replay_by_step(env, first, "m")
    credited = scorer_metric(env.web, "momoguard_account_events_total", event="credit_applied")
    assert worker.stop(signal.SIGTERM) == 0

    # The restarted worker reads its tables back from the changelog, not from the transactions topic: it goes on
    # from the committed offsets (every verdict once), and the second part still scores as offline.
    worker = start_scorer()
    worker.wait_ready()
    replay_by_step(env, second, "m", before=(0, 0))
    assert scorer_metric(env.web, "momoguard_account_events_total", event="send_skipped") == 0

    online = verdict_scores(env, month.height)
    model = load_version(env.settings, version)
    offline = dict(zip((f"m-{t}" for t in month["tx_id"]), model.score(month).tolist(), strict=True))
    worst = max(abs(online[t] - offline[t]) for t in offline)
    assert worst <= 1e-9, f"largest difference {worst}"
    assert credited > 100  # the month had credits to carry, and the state features moved the scores
    pre = register_state_blind(month, model)
    assert max(abs(pre[i] - offline[t]) for i, t in enumerate(offline)) > 0.01


def register_state_blind(month: pl.DataFrame, model: object) -> list[float]:
    """The same model's scores with every account looking new: what a scorer without tables would give."""
    from schemas.features import build_features

    blind = np.full((month.height, len(STATE_FEATURE_NAMES)), -1.0)
    x = build_features(month, "account_state", state=blind)
    return model.booster.predict(x).tolist()  # type: ignore[attr-defined]


def committed_to_end(env: ScorerEnv) -> None:
    """Wait until the group has committed `transactions`, then the credits they made, to the end: every row sent
    so far scored, its credits applied, and both in the table's changelog."""
    s = env.settings
    wait_committed_to_end(s, timeout=90)
    wait_committed_to_end(s.model_copy(update={"topic_transactions": s.topic_credits}), timeout=90)


def survivor_evidence(web: str, survivor: ScorerProcess) -> str:
    """What a survivor that stopped committing reports: its lag, in-flight and scored counts, and a task dump.

    The takeover check has failed about once in 40 runs of this file with two taken-over partitions left
    uncommitted and no stall reported; this says whether the survivor scored them and where its tasks wait."""
    try:
        lines = scorer_metrics(web).splitlines()
    except OSError as error:
        lines = [f"/metrics: {error}"]
    wanted = ("momoguard_consumer_lag", "momoguard_in_flight", "momoguard_stalled", SCORED)
    metrics = "\n".join(line for line in lines if line.startswith(wanted))
    if survivor.proc.poll() is None:
        survivor.proc.send_signal(signal.SIGUSR1)  # mode's worker logs every task's stack
        time.sleep(2)
    return f"{metrics}\n--- survivor log ---\n{survivor.log_tail(60_000)}"


def test_a_worker_sigkilled_mid_replay_its_partitions_recover_on_the_other_with_the_same_scores(
    accounts_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], tmp_path: Path
) -> None:
    env = accounts_env
    s = env.settings
    version = state_model(env, tmp_path)
    month = in_stream_order(generate(steps=40, scale=0.005, seed=8, repeat_clients=True))
    first = start_scorer()
    second = start_scorer("--worker-index", "1")
    for worker in (first, second):
        worker.wait_ready()
    until(
        lambda: len(held(env, 0)) + len(held(env, 1)) == 3 * s.transactions_partitions and held(env, 1),
        "both hold partitions",
    )
    steps = month.partition_by("step", maintain_order=True)
    second_web = f"http://127.0.0.1:{s.web_port + 1}"
    for n, rows in enumerate(steps):
        before = scorer_metric(second_web, SCORED) if n == len(steps) // 2 else 0
        produce(s.kafka_bootstrap, s.topic_transactions, messages(rows, "k"))
        if n == len(steps) // 2:  # mid-replay, mid-step: the second worker dies as soon as it has scored some
            until(lambda b=before: scorer_metric(second_web, SCORED) > b, "the second worker scoring", 30, 0.01)
            assert second.stop(signal.SIGKILL) == -signal.SIGKILL
            until(lambda: len(held(env, 0)) == 3 * s.transactions_partitions, "the first holds every partition", 90)
        try:
            committed_to_end(env)
        except pytest.fail.Exception as failure:
            pytest.fail(f"{failure}\n{survivor_evidence(env.web, first)}")

    model = load_version(s, version)
    offline = dict(zip((f"k-{t}" for t in month["tx_id"]), model.score(month).tolist(), strict=True))
    got = collect(s.kafka_bootstrap, s.topic_verdicts, month.height)
    scores = [(v["tx_id"], v["score"]) for v in got.values]
    assert {t for t, _ in scores} == set(offline)  # every transaction answered (some twice: a SIGKILL)
    worst = max(abs(score - offline[t]) for t, score in scores)
    duplicates = len(scores) - len(offline)
    print(f"ACCOUNTS SIGKILL mid-replay: {duplicates} duplicate verdicts, largest score difference {worst}")
    assert worst <= 1e-9, f"largest difference {worst}"
    skipped = scorer_metric(env.web, "momoguard_account_events_total", event="send_skipped")
    print(f"ACCOUNTS SIGKILL: {skipped} sends below the marks skipped by the survivor")
    assert first.stop() == 0


def test_a_new_consumer_group_on_the_same_run_dir_starts_from_its_own_empty_tables(
    accounts_env: ScorerEnv,
    start_scorer: Callable[..., ScorerProcess],
    topic_factory: Callable[..., str],
    tmp_path: Path,
) -> None:
    """The local table state is kept per consumer group: a second deployment on the same run dir (a new group
    reading new topics, as every `make bench` run does) must not take the first's marks for its own and skip
    its transactions as already applied."""
    env = accounts_env
    state_model(env, tmp_path)
    month = in_stream_order(generate(steps=6, scale=0.005, seed=8, repeat_clients=True))
    first = start_scorer()
    first.wait_ready()
    produce(env.settings.kafka_bootstrap, env.settings.topic_transactions, messages(month, "a"))
    verdict_scores(env, month.height)
    assert first.stop(signal.SIGTERM) == 0

    again = {
        "consumer_group": f"{env.settings.consumer_group}-again",
        "topic_transactions": topic_factory("transactions", partitions=env.settings.transactions_partitions),
        "topic_verdicts": topic_factory("verdicts", partitions=env.settings.verdicts_partitions),
        "topic_credits": topic_factory("credits", partitions=env.settings.transactions_partitions),
    }
    env.settings = env.settings.model_copy(update=again)
    env.env |= {f"MOMOGUARD_{name.upper()}": value for name, value in again.items()}
    with changelog_of(env.settings):
        second = start_scorer()
        second.wait_ready()
        produce(env.settings.kafka_bootstrap, env.settings.topic_transactions, messages(month, "b"))
        until(lambda: scorer_metric(env.web, SCORED) >= month.height, "the second deployment scoring", 90)
        assert scorer_metric(env.web, "momoguard_account_events_total", event="send_skipped") == 0
        assert set(verdict_scores(env, month.height)) == {f"b-{t}" for t in month["tx_id"]}
        assert second.stop() == 0
