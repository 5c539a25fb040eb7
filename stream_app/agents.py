"""The scoring agent: each fetch of `transactions` scored as one batch, delivered, then made committable.

The data path, top to bottom: a fetch as the broker returned it (stream_app/bulk.py hands it over whole) ->
`BatchProcessor.process` (parse, validate, features, score, verdict bytes; bad messages become dead letters) ->
`Deliverer.submit` (acks=all) -> the fetch's offsets become committable, so Faust's commit timer commits them
only after the verdicts are safe.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import faust
from faust.types import StreamT

from stream_app import bulk
from stream_app.state import ScorerState
from stream_app.upkeep import refresh_lag

log = logging.getLogger(__name__)


async def score_fetches(app: faust.App, state: ScorerState, stream: StreamT[bulk.Fetch]) -> AsyncIterator[None]:
    """The agent's body: score every fetch; a bug outside the per-message safety nets stops the worker."""
    try:
        async for fetch in stream:  # one item per fetch of `transactions`, all its partitions
            try:
                score_fetch(app, state, fetch)
            except Exception as error:  # never limp on silently
                log.exception("scoring a fetch of %d failed", len(fetch))
                state.die(f"{type(error).__name__}: {error}")
                raise
            await state.deliverer.wait_below()  # back-pressure while the broker is slow or away
            yield None
    finally:
        # Stopping (SIGTERM): every verdict produced so far is acknowledged before Faust's final commit, within
        # the stop deadline; what is not acknowledged by then is not committed either, and is scored again by
        # whoever reads the partition next. (A rebalance does not stop the agent: the bulk consumer settles the
        # offsets of a revoke itself.)
        if not await state.deliverer.drain(state.drain_budget()):
            log.error(
                "%d records still unacknowledged at the stop deadline (%s); their offsets stay uncommitted",
                state.deliverer.pending,
                state.deliverer.last_error or "no delivery error reported",
            )


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
