"""What a worker's timers do between batches: lag, the output topics' existence, the champion's hot reload, the
challenger's, and the drift gauges."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import faust

from core.errors import BrokerError
from core.settings import Settings
from kafka_ops import topics
from registry import TAG_FEATURE_SET, TAG_REVIEW_THRESHOLD, TAG_THRESHOLD, challenger, champion
from registry.errors import RegistryError, RegistryUnreachableError
from stream_app.state import ScorerState, load_servable, scorer_for

log = logging.getLogger(__name__)


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


def refresh_lists(state: ScorerState) -> None:
    """The gauge of list entries in force, by action: entries that expired since the last tick drop out."""
    if state.lists is None:
        return
    for action, n in state.lists.table.counts(datetime.now(UTC)).items():
        state.metrics.list_entries.labels(action).set(n)


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
    for topic in output_topics(settings):
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


def output_topics(settings: Settings) -> list[str]:
    """The topics a worker writes to: a missing one holds up the batches whose records are bound for it."""
    written = [settings.topic_verdicts, settings.topic_dlq, settings.topic_shadow]
    return written + ([settings.topic_scored] if settings.scored_log else [])


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
    seen = (tags.get(TAG_THRESHOLD), tags.get(TAG_FEATURE_SET), tags.get(TAG_REVIEW_THRESHOLD))
    if state.refused.get(version) == seen:
        return  # already said why
    try:
        model = await loop.run_in_executor(None, load_servable, settings, version)
    except RegistryUnreachableError as error:
        _registry_unreachable(state, error)
        return
    except RegistryError as error:  # unusable, or deleted since the alias was read
        state.refused[version] = seen
        state.metrics.reloads.labels("unusable").inc()
        log.error("new champion unusable, not loaded: %s; scoring on with version %s", error, state.version)
        return
    previous = state.version
    state.swap_model(model)
    state.metrics.reloads.labels("loaded").inc()
    log.info("champion changed: now scoring with version %s (was %s)", model.version, previous)


def _registry_unreachable(state: ScorerState, error: RegistryError) -> None:
    state.reload_failures += 1
    state.metrics.reloads.labels("unreachable").inc()
    log.warning("registry unreachable (%s); scoring on with version %s", error, state.version)


async def check_for_challenger(state: ScorerState) -> None:
    """Poll the challenger alias: shadow with a new challenger from the next batch, stop when the alias is gone.

    Like the champion's reload: loaded off the event loop, an unusable version said once (until its tags
    change), an unreachable registry counted at each poll; the shadow in use goes on meanwhile.
    """
    loop = asyncio.get_running_loop()
    settings = state.settings
    closed_loop = state.closed_loop
    if closed_loop is None:
        return
    shadow = closed_loop.shadow
    try:
        found = await loop.run_in_executor(None, challenger, settings)
    except RegistryError as error:
        state.metrics.shadow_reloads.labels("unreachable").inc()
        log.warning("registry unreachable for the challenger alias (%s)", error)
        return
    if found is None:
        if shadow.version is not None:
            log.info("challenger alias removed: no longer shadowing version %s", shadow.version)
            shadow.use(None)
        return
    version, tags = str(found.version), dict(found.tags)
    if version == shadow.version:
        return
    seen = (tags.get(TAG_THRESHOLD), tags.get(TAG_FEATURE_SET), tags.get(TAG_REVIEW_THRESHOLD))
    if shadow.refused.get(version) == seen:
        return
    try:
        model = await loop.run_in_executor(None, load_servable, settings, version)
    except RegistryUnreachableError as error:
        state.metrics.shadow_reloads.labels("unreachable").inc()
        log.warning("cannot load challenger version %s yet (%s)", version, error)
        return
    except RegistryError as error:
        shadow.refused[version] = seen
        state.metrics.shadow_reloads.labels("unusable").inc()
        log.error("challenger unusable, not shadowing with it: %s", error)
        return
    previous = shadow.version
    shadow.use(scorer_for(model, settings, state.processor.scorer.policy))  # the champion's lists and tier
    state.metrics.shadow_reloads.labels("loaded").inc()
    log.info("now shadowing with challenger version %s (was %s)", model.version, previous or "none")


def refresh_drift(state: ScorerState) -> None:
    """The drift window's PSI of every watched feature and of the score, as gauges."""
    if state.closed_loop is not None:
        state.closed_loop.drift.refresh()
