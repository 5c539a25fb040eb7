"""The account tables' bookkeeping (stream_app/accounts.py) without Kafka: fetches of random sizes, credits coming
back a fetch or more later, acknowledgements in any order, a crash; the features always those of the offline
rule."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import orjson
import polars as pl
import pytest

from paysim.generator import generate
from schemas.account_state import STATE_FEATURE_NAMES, in_stream_order, offline_features
from schemas.transaction import PAYSIM_COLUMNS
from stream_app.accounts import MARK, AccountTables, Changes
from stream_app.parse import parse_transaction
from stream_app.pipeline import Incoming, Record

PARTITIONS = 4


class DictStore:
    def __init__(self) -> None:
        self.data: dict[tuple[int, bytes], bytes] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get((partition, key))

    def write(self, partition: int, items: Sequence[tuple[bytes, bytes]]) -> None:
        self.data.update(((partition, key), value) for key, value in items)


def partition_of(key: bytes) -> int:
    return zlib.crc32(key) % PARTITIONS


class Worker:
    """The agent's use of the tables, with a broker that acknowledges records late and in any order."""

    def __init__(self, store: DictStore, rng: random.Random) -> None:
        self.tables = AccountTables(store, "changelog", "credits")
        self.rng = rng
        self.unacknowledged: list[Callable[[], None]] = []
        self.produced: list[Record] = []  # what was produced, in order: a topic partition's order
        self.committed: dict[int, int] = {}  # per transactions partition, the next offset to read
        self.last: Changes | None = None  # the last fetch's

    def submit(self, records: list[Record], done: Callable[[], None]) -> None:
        self.produced.extend(records)
        self.unacknowledged.append(done)

    def fetch(
        self, credits: list[Incoming], sends: list[Incoming], delivered: bool = True
    ) -> tuple[np.ndarray, list[Record], list[Incoming]]:
        """The features of the sends answered (in order), the credits made, the sends answered."""
        changes = self.tables.begin()
        self.tables.apply_credits(changes, credits)
        sends = [m for m, new in zip(sends, self.tables.first_new(sends), strict=True) if new]
        txs = [parse_transaction(m.value, 100_000, 0) for m in sends]
        state, made, fresh = self.tables.send_features(changes, txs, sends)  # type: ignore[arg-type]
        answered = [m for m, new in zip(sends, fresh, strict=True) if new]
        self.tables.end(changes)
        self.last = changes

        def logged(sends: list[Incoming] = sends) -> None:
            for m in sends:
                self.committed[m.partition] = max(self.committed.get(m.partition, 0), m.offset + 1)

        changes.on_logged = logged
        if delivered:
            self.submit([], lambda: self.tables.delivered(changes, self.submit))  # the verdicts and credits
        return state, made, answered

    def acknowledge_some(self, everything: bool = False) -> None:
        self.rng.shuffle(self.unacknowledged)
        while self.unacknowledged and (everything or self.rng.random() < 0.6):
            self.unacknowledged.pop()()


def step_messages(step_rows: pl.DataFrame, offsets: dict[tuple[str, int], int]) -> list[tuple[int, Incoming]]:
    """(row index, message on `transactions`) of each row, offsets given in order."""
    sends: list[tuple[int, Incoming]] = []
    for row in step_rows.select("i", "tx_id", *PAYSIM_COLUMNS).iter_rows(named=True):
        i = row.pop("i")
        key = str(row["nameOrig"]).encode()
        sends.append((i, message("transactions", key, orjson.dumps(row), offsets)))
    return sends


def replay(
    worker: Worker,
    rows: pl.DataFrame,
    out: np.ndarray,
    offsets: dict[tuple[str, int], int],
    credits: list[Incoming],
    answers: np.ndarray | None = None,
) -> None:
    """Feed `rows` (in stream order) step by step; each step's credits are applied before the next step. `out`
    gets each answered row's features, `answers` counts them."""
    for _, step_rows in rows.group_by("step", maintain_order=True):
        feed(worker, step_messages(step_rows, offsets), out, offsets, credits, answers)


def feed(
    worker: Worker,
    sends: list[tuple[int, Incoming]],
    out: np.ndarray,
    offsets: dict[tuple[str, int], int],
    credits: list[Incoming],
    answers: np.ndarray | None = None,
) -> None:
    """Fetches of random sizes until every send and every credit they make is applied, then every ack."""
    rng = worker.rng
    index = {(m.partition, m.offset): i for i, m in sends}
    while sends or credits:  # until every credit of the step is applied
        n = rng.randint(0, 40)
        taken, sends = sends[:n], sends[n:]
        some = rng.randint(0, len(credits))
        fetch_credits, credits[:] = credits[:some], credits[some:]
        state, made, answered = worker.fetch(fetch_credits, [m for _, m in taken])
        rows = [index[(m.partition, m.offset)] for m in answered]
        out[rows] = state
        if answers is not None:
            answers[rows] += 1
        credits += [message("credits", r.key or b"", r.value, offsets) for r in made]
        worker.acknowledge_some()
    worker.acknowledge_some(everything=True)


def message(topic: str, key: bytes, value: bytes, offsets: dict[tuple[str, int], int]) -> Incoming:
    partition = partition_of(key)
    offset = offsets.get((topic, partition), 0)
    offsets[(topic, partition)] = offset + 1
    return Incoming(topic, partition, offset, key, value)


@pytest.fixture(scope="module")
def month() -> pl.DataFrame:
    return generate(steps=40, scale=0.005, seed=8, repeat_clients=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fetch_by_fetch_the_features_are_the_offline_ones(month: pl.DataFrame, seed: int) -> None:
    out = np.full((month.height, len(STATE_FEATURE_NAMES)), np.nan)
    worker = Worker(DictStore(), random.Random(seed))
    replay(worker, in_stream_order(month.with_row_index("i")), out, {}, [])
    assert np.array_equal(out, offline_features(month))
    assert not worker.tables.working and not worker.tables.waiting  # all of it in the store


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_crash_landing_a_fetchs_records_but_not_its_mark_answers_every_send_on_the_offline_features(
    month: pl.DataFrame, seed: int
) -> None:
    """The producer of a fetch's changelog dies after some of its account records reached the topic and before the
    partitions' marks that follow them did. The next owner restores what reached the changelog and reads on from
    the committed offsets: sends whose records landed are in the table already and are not answered again (their
    verdicts went out before the changelog did); every other send is scored on the state without it."""
    rng = random.Random(seed)
    rows = in_stream_order(month.with_row_index("i"))
    expected = offline_features(month)
    out = np.full((month.height, len(STATE_FEATURE_NAMES)), np.nan)
    answers = np.zeros(month.height, dtype=np.int64)
    steps = rows.partition_by("step", maintain_order=True)
    half = len(steps) // 2
    offsets: dict[tuple[str, int], int] = {}
    store = DictStore()
    first = Worker(store, rng)
    replay(first, pl.concat(steps[:half]), out, offsets, [], answers)

    # The crash fetch: most of a step in one fetch, its verdicts and credits delivered, its changelog produced...
    sends = step_messages(steps[half], offsets)
    index = {(m.partition, m.offset): i for i, m in sends}
    state, made, answered = first.fetch([], [m for _, m in sends], delivered=False)
    answered_rows = [index[(m.partition, m.offset)] for m in answered]
    out[answered_rows] = state
    answers[answered_rows] += 1
    produced: list[Record] = []
    assert first.last is not None
    first.tables.delivered(first.last, lambda records, done: produced.extend(records))
    accounts_logged = [r for r in produced if r.key != MARK]
    assert len(accounts_logged) > 1 and len(produced) > len(accounts_logged)
    # ...of which a prefix of the account records lands (in order per partition), no mark.
    landed = accounts_logged[: rng.randint(1, len(accounts_logged) - 1)]

    restored = DictStore()
    assert not first.unacknowledged  # the changelog of every earlier fetch is on the topic
    for record in [*first.produced, *landed]:  # restored in the topic's order
        assert record.partition is not None
        restored.write(record.partition, [(record.key or b"", record.value)])
    second = Worker(restored, rng)
    credits = [message("credits", r.key or b"", r.value, offsets) for r in made]
    again = [(i, m) for i, m in sends if m.offset >= first.committed.get(m.partition, 0)]
    assert len(again) == len(sends)  # nothing of the crash fetch was committed
    feed(second, again, out, offsets, credits, answers)
    replay(second, pl.concat(steps[half + 1 :]), out, offsets, credits, answers)

    crashed = np.zeros(month.height, dtype=bool)
    crashed[[i for i, _ in sends]] = True
    assert np.array_equal(out, expected)
    assert (answers[~crashed] == 1).all()
    # The crash fetch's sends: answered once when their record landed, twice (at least once) when it did not.
    landed_accounts = {r.key for r in landed}
    names = month["nameOrig"].to_list()
    for i in np.flatnonzero(crashed):
        assert answers[i] == (1 if names[i].encode() in landed_accounts else 2), names[i]
