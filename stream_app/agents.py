"""The scoring agent: each fetch of `transactions` scored as one batch, delivered, then made committable.

The data path, top to bottom: a fetch as the broker returned it (stream_app/bulk.py hands it over whole) ->
`BatchProcessor.process` (parse, validate, features, score, verdict bytes; bad messages become dead letters) ->
`Deliverer.submit` (acks=all) -> the closed loop (shadow verdicts; the rows for the scored log, gathered across
fetches; drift) -> the fetch's offsets become committable once all of it is acknowledged, so Faust's commit timer
commits them only after the verdicts and the log's rows are safe.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from functools import partial

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
        produce_log(state, force=True)
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
    accounts = state.accounts
    if accounts is None:
        outcome = state.processor.process(fetch.incoming())
    else:  # credits first, then the sends on the state they leave (stream_app/accounts.py)
        changes = accounts.begin()
        credits_topic = state.settings.topic_credits
        incoming = fetch.incoming()
        accounts.apply_credits(changes, [m for m in incoming if m.topic == credits_topic])
        sends = [m for m in incoming if m.topic != credits_topic]
        sends = [m for m, new in zip(sends, accounts.first_new(sends), strict=True) if new]
        outcome = state.processor.process(sends, partial(accounts.send_features, changes))
        accounts.end(changes)

    def acknowledged() -> None:
        route.acknowledged(fetch)
        refresh_lag(app, state)

    # Three parts are owed: the verdicts and dead letters, the closed loop's records, the fetch's rows in the log;
    # with account tables a fourth, the fetch's changelog, produced once its verdicts and credits are acknowledged.
    owed = AllOf(3 if accounts is None else 4, acknowledged)
    if accounts is not None:
        changes.on_logged = owed.one

    def verdicts_delivered() -> None:
        state.processor.delivered(outcome)  # the latency metric: up to the verdicts' acknowledgement
        owed.one()
        if accounts is not None:
            accounts.delivered(changes, state.deliverer.submit)

    state.deliverer.submit(outcome.records, verdicts_delivered)  # the verdicts leave before the closed loop runs
    state.deliverer.submit(state.processor.follow_up(outcome), owed.one)
    if state.closed_loop is None:
        owed.one()
    else:
        state.closed_loop.after_logged(owed.one)
    produce_log(state)


def produce_log(state: ScorerState, force: bool = False) -> None:
    """Produce the scored log's waiting rows when due (`force`: whatever waits, for a revoke or a stop)."""
    taken = None if state.closed_loop is None else state.closed_loop.take_log(force)
    if taken is not None:
        records, logged = taken
        state.deliverer.submit(records, logged)


class AllOf:
    """Calls `done` once `one` has been called `parts` times."""

    __slots__ = ("done", "left")

    def __init__(self, parts: int, done: Callable[[], None]) -> None:
        self.left = parts
        self.done = done

    def one(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done()
