"""The bulk path's offset bookkeeping, in memory: what may be committed, what a crash redoes, what a revoke drops."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import faust
from faust.types import TP

from stream_app import bulk
from stream_app.bulk import RecordLike, Watermarks

P0, P1 = TP("tx", 0), TP("tx", 1)


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: int = 1_700_000_000_000
    key: bytes | None = b"k"
    value: bytes | None = b"{}"
    headers: Sequence[tuple[str, bytes]] = ()


def recs(tp: TP, *offsets: int) -> list[RecordLike]:
    return [Rec(tp.topic, tp.partition, o) for o in offsets]


def hand(marks: Watermarks, **by_partition: list[int]) -> bulk.Fetch:
    tps = {"p0": P0, "p1": P1}
    fetch, seek = marks.hand({tps[name]: recs(tps[name], *offsets) for name, offsets in by_partition.items()})
    assert fetch is not None and not seek
    return fetch


def ack(fetch: bulk.Fetch) -> None:
    for book, span in fetch.spans:
        book.ack(span)


def test_a_later_fetch_acknowledged_first_is_not_committable_past_an_earlier_one() -> None:
    marks = Watermarks()
    marks.assigned({P0: 100})
    first = hand(marks, p0=[100, 101, 102])
    second = hand(marks, p0=[103, 104])
    ack(second)
    assert marks.committable() == {}, "the earlier fetch's verdicts are not yet safe"
    ack(first)
    assert marks.committable() == {P0: 105}


def test_offsets_are_tracked_per_partition_within_one_fetch() -> None:
    marks = Watermarks()
    marks.assigned({P0: 10, P1: None})
    fetch = hand(marks, p0=[10, 11], p1=[0, 1, 2])
    assert len(fetch) == 5 and [m.partition for m in fetch.incoming()] == [0, 0, 1, 1, 1]
    assert marks.in_flight() == 5
    ack(fetch)
    assert marks.committable() == {P0: 12, P1: 3}
    marks.committed({P0: 12, P1: 3})
    assert marks.committable() == {} and marks.in_flight() == 0
    assert not marks.should_commit(P0, 12) and marks.should_commit(P0, 13)


def test_a_fetch_that_skips_offsets_never_handed_out_is_sought_back_not_committed_over() -> None:
    # A fetch dropped in a rebalance moved the position past records nobody scored: the next fetch starts late.
    marks = Watermarks()
    marks.assigned({P0: 3140})
    fetch, seek = marks.hand({P0: recs(P0, 4140, 4141)})
    assert fetch is None and seek == {P0: 3140}, "records 3140-4139 must be read again, not committed over"
    assert marks.committable() == {} and marks.in_flight() == 0


def test_a_gap_that_comes_back_after_the_seek_is_real_and_stepped_over() -> None:
    marks = Watermarks()
    marks.assigned({P0: 10})
    assert marks.hand({P0: recs(P0, 12, 15)})[1] == {P0: 10}
    fetch, seek = marks.hand({P0: recs(P0, 12, 15)})  # the same gap again: compacted away, or markers
    assert fetch is not None and not seek
    ack(fetch)
    assert marks.committable() == {P0: 16}


def test_records_of_a_partition_no_longer_held_are_not_handed_out() -> None:
    marks = Watermarks()
    marks.assigned({P0: 0})
    fetch, seek = marks.hand({P0: recs(P0, 0), P1: recs(P1, 0, 1)})
    assert fetch is not None and [r.partition for r in fetch.records] == [0] and not seek


def test_records_read_again_after_a_seek_are_not_handed_out_twice() -> None:
    marks = Watermarks()
    marks.assigned({P0: 0})
    hand(marks, p0=[0, 1, 2])
    again, _ = marks.hand({P0: recs(P0, 1, 2, 3)})
    assert again is not None and [r.offset for r in again.records] == [3]
    assert marks.hand({P0: recs(P0, 2, 3)}) == (None, {})


def test_the_in_flight_count_is_what_a_crash_would_redo_until_committed() -> None:
    marks = Watermarks()
    marks.assigned({P0: 1000})
    fetch = hand(marks, p0=list(range(1000, 1400)))
    assert marks.in_flight() == 400
    ack(fetch)
    assert marks.in_flight() == 400, "acknowledged but not committed: still redone after a SIGKILL"
    marks.committed({P0: 1400})
    assert marks.in_flight() == 0


def test_lag_counts_from_the_committed_offset_before_the_first_fetch_then_from_the_acknowledged_one() -> None:
    marks = Watermarks()
    marks.assigned({P0: 40, P1: None})
    assert marks.lag(P0, 100) == 60, "a stuck worker still shows its backlog"
    assert marks.lag(P1, 100) is None, "nothing committed, nothing read: unknown"
    fetch = hand(marks, p0=[40, 41], p1=[0])
    assert marks.lag(P0, 100) == 60 and marks.lag(P1, 100) == 100
    ack(fetch)
    assert marks.lag(P0, 100) == 58 and marks.lag(P1, 100) == 99


def test_a_revoke_stops_queued_fetches_from_starting_and_late_acknowledgements_touch_no_new_book() -> None:
    app = faust.App("bulk-unit", broker="kafka://127.0.0.1:1")
    route = bulk.BulkRoute(app, ["tx"], window=10_000, revoke_timeout_s=1.0)
    marks = route.watermarks
    marks.assigned({P0: 0})
    started, queued = hand(marks, p0=[0, 1]), hand(marks, p0=[2, 3])
    assert route.start(started)
    marks.close_epoch()  # a revoke begins
    assert not route.start(queued), "handed out before the revoke: must not be scored"
    route.acknowledged(started)  # the revoke waits for this one, then commits it
    assert marks.committable() == {P0: 2}, "the queued fetch is not committed: its next owner reads it"
    marks.committed({P0: 2})
    marks.forget()
    marks.assigned({P0: 2})
    route.acknowledged(queued)  # cannot happen for a fetch never started, and would change nothing if it did
    assert marks.committable() == {} and marks.lag(P0, 4) == 2
    assert not route.unacknowledged and route.skipped == 1


class SeekingConsumer:
    """aiokafka's `seek_to_committed` as it runs: partition by partition, awaiting each one's committed offset,
    with the fetcher running in between and handing over what it read from each partition already sought."""

    def __init__(self, marks: Watermarks, committed: dict[TP, int]) -> None:
        self.marks = marks
        self.offsets = committed
        self.handed: dict[TP, bulk.Fetch | None] = {}

    def _ensure_consumer(self) -> SeekingConsumer:  # the consumer thread's accessor; here thread and consumer
        return self

    def assignment(self) -> set[TP]:
        return set(self.offsets)

    async def committed(self, tp: TP) -> int:
        await asyncio.sleep(0)  # a request to the group coordinator
        return self.offsets[tp]

    async def seek_to_committed(self) -> dict[TP, int]:
        for tp in self.offsets:
            offset = await self.committed(tp)
            fetch, seek = self.marks.hand({tp: recs(tp, offset, offset + 1)})  # the fetcher, right after the seek
            assert not seek
            self.handed[tp] = fetch
        return dict(self.offsets)


class SeekingBulkConsumer(bulk.BulkConsumer):
    """The bulk consumer's `seek_to_committed` alone, over `SeekingConsumer` (no Faust app, no broker)."""

    def __init__(self, route: object, thread: SeekingConsumer) -> None:
        self._test_route = route
        self._thread = cast(Any, thread)

    @property
    def _route(self) -> bulk.BulkRoute | None:
        return cast(bulk.BulkRoute, self._test_route)


def test_books_open_before_the_rebalance_seek_moves_any_position_so_no_fetch_in_between_is_left_out() -> None:
    marks = Watermarks()
    changelog = TP("tx-changelog", 0)
    aiokafka = SeekingConsumer(marks, {P0: 5, P1: 9, changelog: 3})
    consumer = SeekingBulkConsumer(SimpleNamespace(topics=frozenset({"tx"}), watermarks=marks), aiokafka)
    assert asyncio.run(consumer.seek_to_committed()) == {P0: 5, P1: 9, changelog: 3}
    for tp, first in ((P0, 5), (P1, 9)):
        fetch = aiokafka.handed[tp]
        assert fetch is not None and [r.offset for r in fetch.records] == [first, first + 1]
    assert aiokafka.handed[changelog] is None and set(marks.books) == {P0, P1}  # other topics: Faust's own path
