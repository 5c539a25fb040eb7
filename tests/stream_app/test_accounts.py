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
from stream_app.accounts import AccountTables
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
        self.changelog: list[Record] = []  # what reached the changelog topic, in order
        self.committed: dict[int, int] = {}  # per transactions partition, the next offset to read

    def submit(self, records: list[Record], done: Callable[[], None]) -> None:
        def acknowledged() -> None:
            self.changelog.extend(records)
            done()

        self.unacknowledged.append(acknowledged)

    def fetch(self, credits: list[Incoming], sends: list[Incoming]) -> tuple[np.ndarray, list[Record]]:
        changes = self.tables.begin()
        self.tables.apply_credits(changes, credits)
        sends = [m for m, new in zip(sends, self.tables.first_new(sends), strict=True) if new]
        txs = [parse_transaction(m.value, 100_000, 0) for m in sends]
        state, made = self.tables.send_features(changes, txs, sends)  # type: ignore[arg-type]
        self.tables.end(changes)

        def logged(sends: list[Incoming] = sends) -> None:
            for m in sends:
                self.committed[m.partition] = max(self.committed.get(m.partition, 0), m.offset + 1)

        changes.on_logged = logged
        self.submit([], lambda: self.tables.delivered(changes, self.submit))  # the verdicts and credits
        return state, made

    def acknowledge_some(self, everything: bool = False) -> None:
        self.rng.shuffle(self.unacknowledged)
        while self.unacknowledged and (everything or self.rng.random() < 0.6):
            self.unacknowledged.pop()()


def replay(
    worker: Worker, rows: pl.DataFrame, out: np.ndarray, offsets: dict[tuple[str, int], int], credits: list[Incoming]
) -> None:
    """Feed `rows` (in stream order) step by step; each step's credits are applied before the next step."""
    rng = worker.rng
    for _, step_rows in rows.group_by("step", maintain_order=True):
        sends: list[tuple[int, Incoming]] = []
        for row in step_rows.select("i", "tx_id", *PAYSIM_COLUMNS).iter_rows(named=True):
            i = row.pop("i")
            key = str(row["nameOrig"]).encode()
            sends.append((i, message("transactions", key, orjson.dumps(row), offsets)))
        while sends or credits:  # until every credit of the step is applied
            n = rng.randint(0, 40)
            taken, sends = sends[:n], sends[n:]
            some = rng.randint(0, len(credits))
            fetch_credits, credits[:] = credits[:some], credits[some:]
            state, made = worker.fetch(fetch_credits, [m for _, m in taken])
            out[[i for i, _ in taken]] = state
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
