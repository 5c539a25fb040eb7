"""The Faust app of one worker: the bulk path of `transactions`, the scoring agent, timers and web views, wired.

The agent is in stream_app/agents.py, what the timers do in stream_app/upkeep.py, the views in
stream_app/views.py and stream_app/dashboard.py; what they share is the worker's ScorerState
(stream_app/state.py). A dead agent stops the process with a non-zero exit, so a supervisor restarts it.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import faust
from faust.types import StreamT

from core.settings import Settings
from kafka_ops.clients import client_config, librdkafka_config
from kafka_ops.topics import ACCOUNT_TABLE, account_changelog
from registry import LoadedModel
from stream_app import bulk
from stream_app.accounts import AccountTables, FaustStore
from stream_app.agents import produce_log, score_fetches
from stream_app.closed_loop import ClosedLoop
from stream_app.dashboard import register_dashboard
from stream_app.decisions import DecisionPolicy
from stream_app.delivery import Deliverer
from stream_app.faust_monitor import MonitorWithoutMessageStats
from stream_app.list_topic import ListReader
from stream_app.lists import ListTable
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import BatchProcessor
from stream_app.state import ScorerState, scorer_for
from stream_app.upkeep import (
    check_for_challenger,
    check_for_new_champion,
    check_output_topics,
    refresh_drift,
    refresh_lag,
    refresh_lists,
)
from stream_app.views import register_views


def state_dir(settings: Settings, worker_index: int) -> Path:
    """A worker's local Faust folder (the account tables' RocksDB). One per consumer group: another group's state
    (its marks, its changelog offsets) would make this one skip transactions it never scored."""
    group = re.sub(r"[^A-Za-z0-9._-]", "_", settings.consumer_group)
    return settings.run_dir / "faust" / group / f"worker-{worker_index}"


def build_app(
    settings: Settings, model: LoadedModel, worker_index: int = 0, challenger: LoadedModel | None = None
) -> tuple[faust.App, ScorerState]:
    """A Faust app scoring with `model` until the reload timer finds a new champion (shadowed by `challenger`)."""
    metrics = ScorerMetrics()
    lists = ListTable()  # filled and followed by state.lists, started by the worker before it scores
    policy = DecisionPolicy.from_settings(settings, lists)  # the champion's and the challenger's
    scorer = scorer_for(model, settings, policy)
    closed_loop = ClosedLoop(settings, metrics, model)
    if challenger is not None:
        closed_loop.shadow.use(scorer_for(challenger, settings, policy))
    processor = BatchProcessor(
        scorer,
        metrics,
        verdicts_topic=settings.topic_verdicts,
        dlq_topic=settings.topic_dlq,
        max_bytes=settings.max_message_bytes,
        dlq_max_bytes=settings.dlq_max_bytes,
        follow=closed_loop.follow,
    )
    deliverer = Deliverer(
        librdkafka_config(settings),
        metrics,
        rescue=processor.undeliverable,
        attempts=settings.produce_attempts,
        linger_ms=settings.producer_linger_ms,
    )
    state = ScorerState(settings, processor, metrics, deliverer, closed_loop=closed_loop)
    state.lists = ListReader(settings, lists, metrics)
    metrics.set_model(model.name, model.version, model.threshold, time.time(), scorer.review_threshold)

    servers = [server.strip() for server in settings.kafka_bootstrap.split(",")]
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{server}" for server in servers],  # the producer side: Faust's own, unused by scoring
        broker_consumer=[bulk.broker_url(server) for server in servers],  # the bulk consumer (stream_app/bulk.py)
        broker_credentials=client_config(settings).faust_credentials(),
        key_serializer="raw",
        value_serializer="raw",
        datadir=str(state_dir(settings, worker_index)),
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port + worker_index,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 5),
        producer_acks=-1,
        topic_allow_declare=False,  # topics are made by `momoguard topics create`, not changed by workers
        topic_disable_leader=True,
        broker_max_poll_records=settings.max_batch,  # one fetch handed over = one scored batch
        consumer_max_fetch_size=settings.max_fetch_bytes,
        monitor=MonitorWithoutMessageStats(),
        store=settings.state_store,  # the account tables' (the only tables)
        table_standby_replicas=settings.table_standby_replicas,
    )
    topics = [app.topic(settings.topic_transactions, key_type=bytes, value_type=bytes, allow_empty=True)]
    if settings.keeps_account_tables:
        topics.append(app.topic(settings.topic_credits, key_type=bytes, value_type=bytes, allow_empty=True))
        table = app.Table(
            ACCOUNT_TABLE,
            key_type=bytes,
            value_type=bytes,
            partitions=settings.transactions_partitions,
            changelog_topic=app.topic(
                account_changelog(settings),
                key_type=bytes,
                value_type=bytes,
                partitions=settings.transactions_partitions,
                compacting=True,
            ),
        )
        state.accounts = AccountTables(FaustStore(table), account_changelog(settings), settings.topic_credits, metrics)
    route = bulk.install(
        app, *topics, window=settings.in_flight_window, revoke_timeout_s=settings.session_timeout_s / 2
    )
    state.route = route
    route.before_settle = lambda: produce_log(state, force=True)  # a revoke waits for the log's rows too
    if state.accounts is not None:
        route.after_settle = state.accounts.forget

    @app.agent(route.channel)
    async def score(stream: StreamT[bulk.Fetch]) -> AsyncIterator[None]:
        async for _ in score_fetches(app, state, stream):
            yield None

    @app.timer(interval=5.0)
    async def lag_of_idle_partitions() -> None:
        refresh_lag(app, state)
        state.health()  # keeps the stalled gauge current between scrapes

    @app.timer(interval=5.0)
    async def output_topics_exist() -> None:
        await check_output_topics(state)

    @app.timer(interval=5.0)
    async def list_entries_in_force() -> None:
        refresh_lists(state)

    @app.timer(interval=settings.reload_interval_s)
    async def reload_champion() -> None:
        await check_for_new_champion(state)

    @app.timer(interval=settings.reload_interval_s)
    async def reload_challenger() -> None:
        await check_for_challenger(state)

    @app.timer(interval=max(0.01, settings.scored_log_linger_ms / 2000.0))
    async def scored_log_rows() -> None:
        produce_log(state)  # rows that waited their linger while no fetch came

    @app.timer(interval=5.0)
    async def drift_gauges() -> None:
        refresh_drift(state)

    register_views(app, state)
    register_dashboard(app, state)
    return app, state
