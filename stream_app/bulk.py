"""The transactions topic's bulk path inside Faust: each fetch reaches the scorer whole, and Faust commits it.

Faust hands every message to its streams one by one (`Consumer._drain_messages` wraps each in a `wait_first` of
four tasks, then the Conductor builds an `Event`): about 23k messages/s of one core before any work, where the
scorer itself manages 50k+ (docs/BENCHMARKS.md). Here only that hand-over changes. The Faust app keeps its
consumer group, assignor, rebalances, commit timer, agents, timers and web views; for the topics named by a
`BulkRoute` (`transactions`, and the credits topic when the worker keeps account tables), the consumer
(`BulkConsumer`, Faust's aiokafka driver with a few methods overridden, installed as the transport alias
`BULK_SCHEME`) puts each fetch, all its partitions, as one `Fetch` on an in-memory channel that an ordinary
`@app.agent` iterates. Other topics (the account table's changelog among them) keep Faust's per-event path.

Offsets: a fetch's records are committable once the agent says its verdicts are acknowledged (acks=all). Per
partition, `Watermarks` hands out offset spans in order and advances the acknowledged watermark only over a
contiguous run of acknowledged spans; Faust's own commit timer commits that watermark (the consumer's
`_new_offset` and friends answer from it). Three guarantees come on top of Faust's:

- on revoke, the consumer waits for the fetches the agent has started, commits, and only then lets Faust forget
  the partitions (stock Faust drops the acknowledged offsets of revoked partitions before the app's handler
  commits: 82 duplicate verdicts measured after one graceful takeover, 0 here). Fetches handed out but not yet
  started are dropped: they are neither scored nor committed, and the partition's next owner reads them;
- the channel's queue is not one Faust clears on a rebalance (a cleared fetch would be lost from the watermark);
- records must follow on from what each partition's book handed out: a fetch that starts further on (the
  position moved past a fetch dropped in a rebalance) is sought back, never committed over;
- at most `window` transactions are read and not yet committed, so after a SIGKILL at most that many are
  scored twice. When the window is full the consumer commits at once instead of waiting for the timer.

One change is not about the hand-over: aiokafka runs on the app's event loop (`LoopConsumerThread`), not in the
thread of its own that Faust gives it, which takes ~3 ms off the median verdict (see the class).

Faust internals this leans on (faust-streaming is pinned exactly; tests/stream_app/test_faust_internals.py fails,
naming them, when an upgrade changes them): `Consumer._drain_messages`, `_wait_next_records`,
`_filter_tps_with_pending_acks`, `_new_offset`, `_should_commit`, `_commit`, `_to_message`, `_add_gap`,
`_read_offset`, `_stopped`, `flow_active`/`can_resume_flow`/`suspend_flow`, `on_partitions_revoked`,
`seek_to_committed`, `seek_wait`, `_new_consumer_thread`; mode's `ServiceThread.start`/`_serve`/
`_gather_remaining_tasks` and `QueueServiceThread.call_thread` (the consumer on the app's loop); `Channel.queue`;
`mode.utils.queues.ThrowableQueue`/`FlowControlEvent`; the transports' `FactoryMapping.aliases`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import faust
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT, TopicT
from mode.utils.futures import maybe_async
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from stream_app.pipeline import Incoming

log = logging.getLogger(__name__)

# The broker URL scheme that selects this transport: `momoguard-kafka://host:port`.
BULK_SCHEME = "momoguard-kafka"
# Fetches waiting for the agent: enough to keep it busy while aiokafka fetches the next.
QUEUED_FETCHES = 4


class RecordLike(Protocol):
    """The fields of aiokafka's ConsumerRecord the bulk path reads (a stand-in in the unit tests)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


# --- Offsets, pure of Kafka ------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Span:
    """Offsets [start, end) of one partition handed out in one fetch (start covers any gap before its records)."""

    start: int
    end: int
    done: bool = False


class PartitionBook:
    """One partition's offsets: read (handed out), acknowledged in order, committed.

    `acked` only moves over a contiguous run of acknowledged spans, so a commit never passes a verdict that is
    not yet safe, even when a later fetch is acknowledged before an earlier one.
    """

    __slots__ = ("base", "read", "acked", "committed", "gap", "_spans")

    def __init__(self, committed: int | None) -> None:
        self.committed = committed  # the group's committed offset (the next one to read), if any
        self.base = committed  # where this worker's responsibility for the partition starts
        self.read = committed  # the next offset to hand out
        self.acked = committed  # the next offset not yet acknowledged
        self.gap: tuple[int, int] | None = None  # (read, first) of a gap already sought back over once
        self._spans: deque[Span] = deque()

    def hand(self, first: int, last: int) -> Span:
        if self.read is None:  # nothing committed: the first fetch tells where reading starts
            self.base = self.read = self.acked = first
        span = Span(self.read, last + 1)
        self.read = last + 1
        self._spans.append(span)
        return span

    def ack(self, span: Span) -> None:
        span.done = True
        spans = self._spans
        while spans and spans[0].done:
            self.acked = spans.popleft().end

    @property
    def floor(self) -> int | None:
        return self.committed if self.committed is not None else self.base

    @property
    def in_flight(self) -> int:
        """Offsets read and not yet committed."""
        floor = self.floor
        return 0 if self.read is None or floor is None else self.read - floor

    def committable(self) -> int | None:
        floor = self.floor
        if self.acked is None or floor is None or self.acked <= floor:
            return None
        return self.acked

    def lag(self, highwater: int | None) -> int | None:
        """Messages not yet answered: up to the end of the partition from the acknowledged watermark."""
        if highwater is None or self.acked is None:
            return None
        return max(0, highwater - self.acked)


@dataclass(slots=True, eq=False)
class Fetch:
    """One fetch of the bulk topic, handed to the agent whole: records of every partition, each in offset order."""

    records: list[RecordLike]
    spans: list[tuple[PartitionBook, Span]]
    epoch: int

    def __len__(self) -> int:
        return len(self.records)

    def incoming(self) -> list[Incoming]:
        return [
            Incoming(
                r.topic,
                r.partition,
                r.offset,
                r.key,
                r.value,
                list(r.headers) if r.headers else None,
                r.timestamp / 1000.0 if r.timestamp is not None else None,
            )
            for r in self.records
        ]


class Watermarks:
    """The bulk topic's per-partition books, and the epoch that a revoke ends.

    A fetch carries the epoch it was handed out in; once a revoke has begun, fetches of an earlier epoch are
    not started. Pure of Kafka: unit-tested in memory (tests/stream_app/test_bulk.py).
    """

    def __init__(self) -> None:
        self.books: dict[TP, PartitionBook] = {}
        self.epoch = 0

    def assigned(self, committed: Mapping[TP, int | None]) -> None:
        """Open books for newly assigned partitions at the group's committed offsets (None: nothing committed)."""
        for tp, offset in committed.items():
            if tp not in self.books:
                self.books[tp] = PartitionBook(offset if offset is not None and offset >= 0 else None)

    def hand(self, records: Mapping[TP, Sequence[RecordLike]]) -> tuple[Fetch | None, dict[TP, int]]:
        """Register a fetch's records with the current books; (the fetch or None, partitions to seek back).

        Records must follow on from what each book has handed out: re-reads (after a seek) are left out, records
        of partitions this worker no longer holds (no book) too. A fetch that starts past a book's read offset
        is not handed out: records in between were fetched and never handed (a fetch dropped in a rebalance),
        so the partition is sought back to the read offset. Only if the same gap comes back is it taken as real
        (offsets compacted, deleted or taken by transaction markers) and stepped over.
        """
        kept: list[RecordLike] = []
        spans: list[tuple[PartitionBook, Span]] = []
        seek: dict[TP, int] = {}
        for tp, batch in records.items():
            book = self.books.get(tp)
            if not batch or book is None:
                continue
            if book.read is not None and batch[0].offset < book.read:
                batch = [r for r in batch if r.offset >= book.read]  # read again after a seek: already handed out
                if not batch:
                    continue
            first = batch[0].offset
            if book.read is not None and first > book.read:
                if book.gap != (book.read, first):
                    book.gap = (book.read, first)
                    seek[tp] = book.read
                    continue
                log.warning(
                    "%s offsets %d-%d do not exist (compacted, deleted, markers): skipped", tp, book.read, first - 1
                )
            book.gap = None
            spans.append((book, book.hand(first, batch[-1].offset)))
            kept.extend(batch)
        return (Fetch(kept, spans, self.epoch) if kept else None), seek

    def in_flight(self) -> int:
        return sum(book.in_flight for book in self.books.values())

    def committable(self) -> dict[TP, int]:
        out: dict[TP, int] = {}
        for tp, book in self.books.items():
            offset = book.committable()
            if offset is not None:
                out[tp] = offset
        return out

    def offset_to_commit(self, tp: TP) -> int | None:
        book = self.books.get(tp)
        return None if book is None else book.committable()

    def should_commit(self, tp: TP, offset: int) -> bool:
        book = self.books.get(tp)
        return book is not None and (book.committed is None or offset > book.committed)

    def committed(self, offsets: Mapping[TP, int]) -> None:
        for tp, offset in offsets.items():
            book = self.books.get(tp)
            if book is not None and (book.committed is None or offset > book.committed):
                book.committed = offset

    def lag(self, tp: TP, highwater: int | None) -> int | None:
        book = self.books.get(tp)
        return None if book is None else book.lag(highwater)

    def close_epoch(self) -> None:
        """A revoke began: fetches handed out so far are not started any more."""
        self.epoch += 1

    def forget(self) -> None:
        """The revoke is settled: every book closes (eager rebalancing revokes every partition; Faust seeks the
        new assignment to the committed offsets, where new books open)."""
        self.books.clear()


# --- The route the consumer and the agent share ------------------------------------------------------------------


class BulkChannel(faust.Channel):
    """An in-memory channel whose queue a rebalance does not clear.

    Faust's channel queues are managed by `app.flow_control`, which empties them on every rebalance so that
    agents do not process events of revoked partitions. A bulk fetch taken out of the queue that way would be
    silently lost from the watermark; here the agent itself skips fetches of an ended epoch instead.
    """

    @property
    def queue(self) -> ThrowableQueue:
        if self._queue is None:
            never_suspended = FlowControlEvent(initially_suspended=False)
            self._queue = ThrowableQueue(maxsize=self.maxsize or QUEUED_FETCHES, flow_control=never_suspended)
        return self._queue


class BulkRoute:
    """What the bulk consumer and the scoring agent share: the topics, the channel, the watermarks, the window.

    The topics' fetches go to the agent together (with the account tables, `transactions` and the credits that
    come back to their accounts' partitions: stream_app/accounts.py).
    """

    def __init__(self, app: AppT, topics: Sequence[str], window: int, revoke_timeout_s: float) -> None:
        assert not isinstance(topics, str)
        self.topics = frozenset(topics)
        self.window = window
        self.revoke_timeout_s = revoke_timeout_s
        self.watermarks = Watermarks()
        self.channel = BulkChannel(app, maxsize=QUEUED_FETCHES)
        self.unacknowledged: set[Fetch] = set()  # started by the agent, verdicts not yet acknowledged
        self.skipped = 0  # fetches not started because a revoke ended their epoch
        self.before_settle: Callable[[], None] | None = None  # a revoke began: produce what is held back now
        self.after_settle: Callable[[], None] | None = None  # the revoke is settled: drop per-partition state
        self._moved = asyncio.Event()

    def start(self, fetch: Fetch) -> bool:
        """The agent is about to score `fetch`; False if a revoke has ended its epoch (then it must not)."""
        if fetch.epoch != self.watermarks.epoch:
            self.skipped += 1
            return False
        self.unacknowledged.add(fetch)
        return True

    def acknowledged(self, fetch: Fetch) -> None:
        """Every verdict and dead letter of `fetch` is acknowledged: its offsets become committable."""
        self.unacknowledged.discard(fetch)
        for book, span in fetch.spans:
            book.ack(span)
        self._moved.set()

    def moved(self) -> None:
        self._moved.set()

    async def wait_moved(self, timeout: float) -> None:
        """Until a fetch is acknowledged or a commit lands, or `timeout`."""
        self._moved.clear()
        try:
            await asyncio.wait_for(self._moved.wait(), timeout)
        except TimeoutError:
            pass

    async def hand(self, fetch: Fetch) -> None:
        # The agent subscribes to the channel when it starts; Faust starts the fetcher after the agents, but a
        # put with no subscriber would drop the fetch, so make sure.
        while not self.channel.subscriber_count:
            await asyncio.sleep(0.05)
        await self.channel.put(cast(Any, fetch))  # a raw value, not an Event: the stream yields it as it is


_ROUTES: weakref.WeakKeyDictionary[AppT, BulkRoute] = weakref.WeakKeyDictionary()


def install(app: AppT, *topics: TopicT, window: int, revoke_timeout_s: float) -> BulkRoute:
    """Route `topics` of `app` through the bulk path; the app's consumer URLs must come from `broker_url`."""
    drivers.TRANSPORTS.aliases.setdefault(BULK_SCHEME, f"{__name__}:BulkTransport")
    # No agent iterates the topics themselves, so tell Faust's Conductor to subscribe to them.
    for topic in topics:
        app.topics.add(topic)
    route = BulkRoute(app, [topic.get_topic_name() for topic in topics], window, revoke_timeout_s)
    _ROUTES[app] = route
    return route


def broker_url(server: str) -> str:
    return f"{BULK_SCHEME}://{server}"


# --- The consumer -----------------------------------------------------------------------------------------------


class LoopConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer service, run on the app's own event loop instead of a thread of its own.

    Stock Faust runs aiokafka in a `ServiceThread` with a loop of its own, and every call crosses over: the app
    loop posts to the thread's method queue, the thread wakes, runs the call, and posts the result back. A fetch
    reached the scorer ~2.5 ms after the broker appended it where a bare aiokafka consumer on one loop has it in
    ~1 ms, because the two threads hand the GIL back and forth (the app loop is ~40 % busy at 1,000 tx/s).
    On one loop, a call is an await. The drain rate does not change (paired runs in docs/BENCHMARKS.md); the
    median latency at 1,000 tx/s falls by ~3 ms. Rebalance callbacks still go through the consumer's method
    queue, which is on the same loop: one extra turn of the loop, once a rebalance.
    """

    def __init__(self, consumer: faust_aiokafka.Consumer, *, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)
        self._serving: asyncio.Future[None] | None = None  # the loop holds tasks weakly: keep `_serve`'s here

    async def start(self) -> None:
        # `ServiceThread.start` starts a thread that runs `_serve` on the thread's loop: run it here as a task.
        assert not self._thread_started.is_set()
        self._thread_started.set()
        self._thread_running = self.parent_loop.create_future()
        self._serving = asyncio.ensure_future(self._serve())
        try:
            await self._thread_running  # set once started, or to the error that stopped the start
        finally:
            self._thread_running = None

    async def _gather_remaining_tasks(self) -> None:
        # The stock thread cancels every task left on its own loop when it stops; this loop is the app's.
        pass

    async def call_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await maybe_async(fun(*args, **kwargs))


class BulkConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, whose fetches of the route's topic go to the agent whole."""

    def _new_consumer_thread(self) -> LoopConsumerThread:
        return LoopConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @property
    def _route(self) -> BulkRoute | None:
        return _ROUTES.get(self.app)

    # Faust's Fetcher service runs this as its one task, for the consumer's whole life (restarted after a
    # rebalance crash). The stock version calls the Conductor once per message; see the module docstring.
    async def _drain_messages(self, fetcher: Any) -> None:
        route = self._route
        if route is None:
            await super()._drain_messages(fetcher)
            return
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                # Faust's own fetch step: waits while the flow is stopped (rebalancing), skips paused partitions,
                # and returns what aiokafka has buffered, waiting only when it has nothing.
                records, active = await self._wait_next_records(1.0)
                if not records or self.should_stop:
                    continue
                mine: dict[TP, Sequence[RecordLike]] = {}
                others: dict[TP, list[Any]] = {}
                for tp, batch in records.items():
                    (mine if tp.topic in route.topics else others)[tp] = batch
                if others:
                    await self._deliver_one_by_one(others, active)
                if mine:
                    await self._hand(route, mine)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _hand(self, route: BulkRoute, records: Mapping[TP, Sequence[RecordLike]]) -> None:
        size = sum(len(batch) for batch in records.values())
        while True:
            if not self.flow_active:  # stopped without a revoke (a stopping worker): hold on to the fetch
                if self.should_stop:
                    return
                await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
                continue
            in_flight = route.watermarks.in_flight()
            if not in_flight or in_flight + size <= route.window:
                break
            # The window is full: commit what is acknowledged now rather than at the next tick of the timer.
            await self.commit()
            if route.watermarks.in_flight() + size > route.window:
                await route.wait_moved(1.0)
        fetch, seek = route.watermarks.hand(records)
        if seek:
            # Fetched past records never handed out (see Watermarks.hand): read them again.
            log.info("bulk: seeking %s back to the offsets not yet handed out", seek)
            try:
                await self.seek_wait(seek)
            except Exception as error:  # revoked meanwhile: the next assignment starts from the committed offsets
                log.warning("bulk: could not seek back (%s); the rebalance under way resets the positions", error)
        if fetch is not None:
            await route.hand(fetch)

    async def _deliver_one_by_one(self, records: Mapping[TP, list[Any]], active: set[TP] | None) -> None:
        """Faust's per-message path for every other topic: what the stock `_drain_messages` does with a fetch."""
        generation = self.app.consumer_generation_id
        read_offset = self._read_offset
        for tp, record in self.scheduler.iterate(records):
            if not self.flow_active or self.app.consumer_generation_id != generation:
                # Like stock Faust: what is left of the fetch is read again after the rebalance's seek.
                return
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            message = self._to_message(tp, record)
            offset, r_offset = message.offset, read_offset[tp]
            if r_offset is None or offset >= r_offset:
                if r_offset and offset - r_offset > 1 and self.app.topics.acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                await self.wait_first(self.callback(message), self.suspend_flow.wait())
                read_offset[tp] = offset

    # --- commits: Faust's commit machinery, answered from the watermarks for the route's topic ---

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        yield from super()._filter_tps_with_pending_acks(topics)
        route = self._route
        if route is not None:
            for tp in route.watermarks.committable():
                if topics is None or tp in topics or tp.topic in topics:
                    yield tp

    def _new_offset(self, tp: TP) -> int | None:
        route = self._route
        if route is not None and tp.topic in route.topics:
            return route.watermarks.offset_to_commit(tp)
        return super()._new_offset(tp)

    def _should_commit(self, tp: TP, offset: int) -> bool:
        route = self._route
        if route is not None and tp.topic in route.topics:
            return route.watermarks.should_commit(tp, offset)
        return bool(super()._should_commit(tp, offset))

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        committed = bool(await super()._commit(offsets))
        route = self._route
        if committed and route is not None:
            route.watermarks.committed({tp: o for tp, o in offsets.items() if tp.topic in route.topics})
            route.moved()
        return committed

    async def seek_to_committed(self) -> Mapping[TP, int]:
        # Faust seeks the new assignment to the committed offsets after every rebalance (`perform_seek`):
        # that is where the books of the new assignment open. They open before any position moves: aiokafka
        # seeks partition by partition, awaiting each one's committed offset, and the fetcher runs in between
        # (Faust has resumed the partitions by then). A fetch of a partition already sought back but with no
        # book yet would be left out (Watermarks.hand) and, the position being past it, never read again.
        route = self._route
        if route is not None:
            consumer = self._thread._ensure_consumer()
            held = [tp for tp in consumer.assignment() if tp.topic in route.topics]
            route.watermarks.assigned({TP(tp.topic, tp.partition): await consumer.committed(tp) for tp in held})
        return await super().seek_to_committed()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        route = self._route
        if route is not None and not self.app.should_stop:
            await self._settle(route)
        await super().on_partitions_revoked(revoked)

    async def wait_empty(self) -> None:
        # A stopping worker: Faust's last commit follows this. Settle first, as on a revoke, so that fetches the
        # agent has started are committed once acknowledged (their verdicts, and their rows in the scored log,
        # which may wait up to its linger), and fetches not yet started stay unscored, for the next owner.
        route = self._route
        if route is not None and self.app.should_stop and route.watermarks.books:
            await self._settle(route)
        await super().wait_empty()

    async def _settle(self, route: BulkRoute) -> None:
        """Before Faust forgets the revoked partitions: no new work, wait for the verdicts owed, commit them."""
        started = time.monotonic()
        route.watermarks.close_epoch()
        self.stop_flow()
        if route.before_settle is not None:
            route.before_settle()
        deadline = started + route.revoke_timeout_s
        while route.unacknowledged and time.monotonic() < deadline:
            await route.wait_moved(max(0.0, deadline - time.monotonic()))
        if route.unacknowledged:
            log.warning(
                "rebalance: %d fetches still unacknowledged after %.1f s; their partitions' next owner scores "
                "them again",
                len(route.unacknowledged),
                route.revoke_timeout_s,
            )
            route.unacknowledged.clear()
        # A commit already under way (the timer's) makes commit() wait for it and return: commit until nothing
        # acknowledged is left uncommitted (or the commit fails: the group moved on, the partitions are redone).
        for _ in range(3):
            if not route.watermarks.committable():
                break
            await self.commit()
        route.watermarks.forget()
        if route.after_settle is not None:
            route.after_settle()
        log.info("rebalance: bulk offsets settled in %.3f s", time.monotonic() - started)


class BulkTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with the bulk consumer (selected by the `BULK_SCHEME` broker URL)."""

    Consumer = BulkConsumer
