"""The Faust app: one agent scoring whole fetches of `transactions`, a reload timer, and web endpoints.

The data path, top to bottom: each fetch of `transactions`, as the broker returned it (stream_app/bulk.py hands
it to the agent whole) -> `BatchProcessor.process` (parse, validate, features, score, verdict bytes; bad
messages become dead letters) -> `Deliverer.submit` (acks=all) -> the fetch's offsets become committable, so
Faust's commit timer commits them only after the verdicts are safe.

Around it, what keeps a worker honest: `/health` fails when the agent has died or work waits with no progress
for `stall_timeout_s`; a timer watches that the topics the scorer writes to exist; a dead agent stops the
process with a non-zero exit, so a supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP, StreamT
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from core.errors import BrokerError
from core.settings import Settings
from kafka_ops import topics
from kafka_ops.clients import client_config, librdkafka_config
from registry import TAG_FEATURE_SET, TAG_THRESHOLD, LoadedModel, champion, load_version
from registry.errors import RegistryError, RegistryUnreachableError
from stream_app import bulk
from stream_app.dashboard import register_dashboard
from stream_app.delivery import Deliverer
from stream_app.faust_monitor import BatchMonitor
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import BatchProcessor
from stream_app.scoring import Scorer

log = logging.getLogger(__name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"
EXIT_AGENT_DIED = 3


@dataclass
class ScorerState:
    """What the agent, the reload timer and the web views share inside one worker."""

    settings: Settings
    processor: BatchProcessor
    metrics: ScorerMetrics
    deliverer: Deliverer
    reload_failures: int = 0
    refused: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # unusable champions' tags
    lag_partitions: set[TP] = field(default_factory=set)  # partitions with a lag gauge
    lag: int = 0  # messages behind, over the assigned partitions
    last_batch_at: float = field(default_factory=time.monotonic)
    crashed: str | None = None  # why the agent died, once it has
    exit_code: int = 0
    missing_topics: set[str] = field(default_factory=set)
    stop_deadline: float | None = None  # monotonic time by which a stopping worker must have exited
    route: bulk.BulkRoute | None = None  # the bulk path of `transactions` (stream_app/bulk.py)

    @property
    def version(self) -> str:
        return self.processor.scorer.version

    def use(self, model: LoadedModel) -> None:
        """Swap the model. Called on the event loop, where no batch is ever half-scored (`process` is sync)."""
        self.processor.swap(scorer_for(model, self.settings))
        self.metrics.set_model(model.name, model.version, model.threshold, time.time())

    def health(self, now: float | None = None) -> dict[str, Any]:
        """Alive, stalled (work waits and nothing moved for `stall_timeout_s`) or crashed, with the evidence."""
        now = time.monotonic() if now is None else now
        progress = max(self.last_batch_at, self.deliverer.last_progress)
        idle_for = now - progress
        waiting = self.lag > 0 or self.deliverer.pending > 0
        stalled = waiting and idle_for > self.settings.stall_timeout_s
        self.metrics.stalled.set(1 if stalled else 0)
        status = "crashed" if self.crashed else "stalled" if stalled else "alive"
        report: dict[str, Any] = {
            "status": status,
            "lag": self.lag,
            "unacknowledged": self.deliverer.pending,
            "seconds_since_progress": round(idle_for, 1),
        }
        if self.crashed:
            report["error"] = self.crashed
        elif stalled:
            report["error"] = self.deliverer.last_error or "no delivery error reported"
        if self.missing_topics:
            report["missing_topics"] = sorted(self.missing_topics)
        return report

    def progressed(self) -> None:
        self.last_batch_at = time.monotonic()
        self.metrics.last_progress.set(time.time())

    def die(self, reason: str) -> None:
        """The agent cannot go on: say so, fail /health, and stop the process with a non-zero exit."""
        if self.crashed is None:
            log.critical("the scoring agent died (%s): stopping the worker (exit %d)", reason, EXIT_AGENT_DIED)
            self.crashed = reason
            self.exit_code = EXIT_AGENT_DIED
            os.kill(os.getpid(), signal.SIGTERM)  # the same bounded stop as an operator's SIGTERM

    def drain_budget(self) -> float:
        """Seconds a stopping agent may wait for its verdicts: what is left before the hard deadline, less a margin."""
        if self.stop_deadline is None:
            return self.settings.shutdown_timeout_s
        return max(0.0, self.stop_deadline - time.monotonic() - 2.0)


def scorer_for(model: LoadedModel, settings: Settings) -> Scorer:
    return Scorer(model, settings.reasons_per_verdict, settings.explain_min_score)


def build_app(settings: Settings, model: LoadedModel, worker_index: int = 0) -> tuple[faust.App, ScorerState]:
    """A Faust app scoring with `model` until the reload timer finds a new champion."""
    metrics = ScorerMetrics()
    processor = BatchProcessor(
        scorer_for(model, settings),
        metrics,
        verdicts_topic=settings.topic_verdicts,
        dlq_topic=settings.topic_dlq,
        max_bytes=settings.max_message_bytes,
        dlq_max_bytes=settings.dlq_max_bytes,
    )
    deliverer = Deliverer(
        librdkafka_config(settings), metrics, rescue=processor.undeliverable, attempts=settings.produce_attempts
    )
    state = ScorerState(settings, processor, metrics, deliverer)
    metrics.set_model(model.name, model.version, model.threshold, time.time())

    servers = [server.strip() for server in settings.kafka_bootstrap.split(",")]
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{server}" for server in servers],  # the producer side: Faust's own, unused by scoring
        broker_consumer=[bulk.broker_url(server) for server in servers],  # the bulk consumer (stream_app/bulk.py)
        broker_credentials=client_config(settings).faust_credentials(),
        key_serializer="raw",
        value_serializer="raw",
        datadir=str(settings.run_dir / "faust" / f"worker-{worker_index}"),
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
        monitor=BatchMonitor(),
    )
    route = bulk.install(
        app,
        app.topic(settings.topic_transactions, key_type=bytes, value_type=bytes, allow_empty=True),
        window=settings.in_flight_window,
        revoke_timeout_s=settings.session_timeout_s / 2,
    )
    state.route = route

    @app.agent(route.channel)
    async def score(stream: StreamT[bulk.Fetch]) -> AsyncIterator[None]:
        try:
            async for fetch in stream:  # one item per fetch of `transactions`, all its partitions
                try:
                    score_fetch(app, state, fetch)
                except Exception as error:  # a bug outside the per-message safety nets: never limp on silently
                    log.exception("scoring a fetch of %d failed", len(fetch))
                    state.die(f"{type(error).__name__}: {error}")
                    raise
                await state.deliverer.wait_below()  # back-pressure while the broker is slow or away
                yield None
        finally:
            # Stopping (SIGTERM): every verdict produced so far is acknowledged before Faust's final commit,
            # within the stop deadline; what is not acknowledged by then is not committed either, and is scored
            # again by whoever reads the partition next. (A rebalance does not stop the agent: the bulk consumer
            # settles the offsets of a revoke itself.)
            if not await state.deliverer.drain(state.drain_budget()):
                log.error(
                    "%d records still unacknowledged at the stop deadline (%s); their offsets stay uncommitted",
                    state.deliverer.pending,
                    state.deliverer.last_error or "no delivery error reported",
                )

    @app.timer(interval=5.0)
    async def lag_of_idle_partitions() -> None:
        refresh_lag(app, state)
        state.health()  # keeps the stalled gauge current between scrapes

    @app.timer(interval=5.0)
    async def output_topics_exist() -> None:
        await check_output_topics(state)

    @app.timer(interval=settings.reload_interval_s)
    async def reload_champion() -> None:
        await check_for_new_champion(state)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # aiohttp takes the charset apart from the content type
            return self.bytes(generate_latest(state.metrics.registry), content_type=PROMETHEUS_CONTENT_TYPE)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            report = state.health()
            return self.json(report, status=200 if report["status"] == "alive" else 503)

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
            health = state.health()
            ready = bool(assigned) and health["status"] == "alive" and not state.missing_topics
            body = {"ready": ready, "model_version": state.version, "partitions": assigned, "health": health}
            return self.json(body, status=200 if ready else 503)

    register_dashboard(app, state)
    return app, state


def score_fetch(app: faust.App, state: ScorerState, fetch: bulk.Fetch) -> None:
    """Score one fetch and hand its records to the producer; its offsets become committable once all are
    acknowledged (the route's watermarks, committed by Faust's commit timer)."""
    route = state.route
    assert route is not None  # set by build_app
    if not route.start(fetch):
        return  # handed out before a rebalance: neither scored nor committed; the partition's next owner reads it
    state.progressed()
    outcome = state.processor.process(fetch.incoming())

    def delivered() -> None:
        route.acknowledged(fetch)
        state.processor.delivered(outcome)
        refresh_lag(app, state)

    state.deliverer.submit(outcome.records, delivered)


def refresh_lag(app: faust.App, state: ScorerState) -> None:
    """Lag of every assigned partition (also idle or stalled ones), from the bulk path's acknowledged watermarks.

    A partition not scored here yet counts from the group's committed offset, so a worker stuck before its first
    batch still shows its backlog; revoked partitions are dropped.
    """
    route = state.route
    if route is None:
        return
    try:
        assigned = app.consumer.assignment()
    except Exception:  # the consumer is not (or no longer) running: nothing to report
        return
    for tp in state.lag_partitions - assigned:
        try:
            state.metrics.lag.remove(tp.topic, str(tp.partition))
        except KeyError:
            pass
    state.lag_partitions &= assigned
    total = 0
    for tp in assigned:
        try:
            highwater = app.consumer.highwater(tp)
        except Exception:  # partition revoked meanwhile: nothing to report
            continue
        behind = route.watermarks.lag(tp, highwater)
        if behind is not None:
            state.metrics.lag.labels(tp.topic, str(tp.partition)).set(behind)
            state.lag_partitions.add(tp)
            total += behind
    state.lag = total
    state.metrics.in_flight.set(route.watermarks.in_flight())


async def check_output_topics(state: ScorerState) -> None:
    """Say once when a topic the scorer writes to disappears (and recreate it if allowed), and when it is back.

    Records for a missing topic wait in the producer (its retries have no limit), so nothing is lost: delivery
    resumes by itself once the topic exists again.
    """
    settings = state.settings
    loop = asyncio.get_running_loop()
    try:
        present = await loop.run_in_executor(None, topics.list_topics, settings, 5.0)
    except BrokerError:
        return  # the broker is away: the deliverer's retries and /health speak for that
    for topic in (settings.topic_verdicts, settings.topic_dlq):
        missing = topic not in present
        state.metrics.topic_missing.labels(topic).set(1 if missing else 0)
        if missing and topic not in state.missing_topics:
            state.missing_topics.add(topic)
            log.error(
                "topic %r does not exist: its records wait in memory until it does (%s)",
                topic,
                "recreating it" if settings.recreate_missing_topics else "run `momoguard topics create`",
            )
        elif not missing and topic in state.missing_topics:
            state.missing_topics.discard(topic)
            log.warning("topic %r exists again: delivery resumes", topic)
    if state.missing_topics and settings.recreate_missing_topics:
        try:
            await loop.run_in_executor(None, topics.create_topics, settings)
        except BrokerError as error:
            log.error("could not recreate %s: %s", ", ".join(sorted(state.missing_topics)), error)


async def check_for_new_champion(state: ScorerState) -> None:
    """Poll the champion alias; load a new version off the event loop and swap it in between batches.

    An unreachable registry is counted at every poll (the next poll retries). A champion that is unusable
    (`registry.check_version`) is logged and counted once: the worker scores on with the model it has, and
    tries that version again only when its threshold or feature set tag changes.
    """
    loop = asyncio.get_running_loop()
    settings = state.settings
    try:
        found = await loop.run_in_executor(None, champion, settings)
    except RegistryError as error:
        _registry_unreachable(state, error)
        return
    state.reload_failures = 0
    if found is None or str(found.version) == state.version:
        return
    version, tags = str(found.version), dict(found.tags)
    seen = (tags.get(TAG_THRESHOLD), tags.get(TAG_FEATURE_SET))
    if state.refused.get(version) == seen:
        return  # already said why
    try:
        model = await loop.run_in_executor(None, load_version, settings, version)
    except RegistryUnreachableError as error:
        _registry_unreachable(state, error)
        return
    except RegistryError as error:  # unusable, or deleted since the alias was read
        state.refused[version] = seen
        state.metrics.reloads.labels("unusable").inc()
        log.error("new champion unusable, not loaded: %s; scoring on with version %s", error, state.version)
        return
    previous = state.version
    state.use(model)
    state.metrics.reloads.labels("loaded").inc()
    log.info("champion changed: now scoring with version %s (was %s)", model.version, previous)


def _registry_unreachable(state: ScorerState, error: RegistryError) -> None:
    state.reload_failures += 1
    state.metrics.reloads.labels("unreachable").inc()
    log.warning("registry unreachable (%s); scoring on with version %s", error, state.version)
