"""Account memory on the bulk path: the scorer's account table, read and written fetch by fetch.

The rule and the record are schemas/account_state.py's (`AccountRecord`); offline and online give the same
numbers. Here is how the scorer keeps the records, partition by partition, durable and exact after a crash:

- **The table** is a Faust table (`accounts`, keyed by account id, raw bytes) over a RocksDB store by default
  (`MOMOGUARD_STATE_STORE`), with its changelog topic; Faust's assignor gives a worker the table partitions of the
  `transactions` partitions it holds (co-partitioned: same count, same keys), restores them from the changelog
  on assignment (the partitions stay paused until it has), and keeps standby replicas when asked to. The bulk
  path has no current event, so it writes the store by partition and the changelog through the scorer's own
  producer (acks=all), with the partition given explicitly.
- **Sends**: a transaction of account A on partition p reads A's record (the fetch's working copy, else the
  store), computes its state features and updates the record (`AccountRecord.send_features`).
- **Credits**: a transaction that credits its destination D (every type but CASH_IN, not a merchant) produces a
  credit to `transactions.credits`, keyed by D, so it lands on D's partition; the worker that holds D's partition
  reads it in a later fetch (the bulk route covers both topics) and applies it before that fetch's sends. A credit
  carries the transaction's partition and offset: a record applies a credit only past the last one it applied
  from that partition, so a credit produced twice (a transaction scored again after a crash) counts once.
- **Order of durability, per fetch**: the verdicts and credits are produced; once the broker has them, the fetch's
  changelog records (the records it changed, as they were at the end of that fetch) and a mark per transactions
  partition (`MARK`: the next offset whose effects are not in the table) are produced, in fetch order; once the
  broker has those, they are written to the local store and the fetch's offsets become committable. So the table
  never holds what a verdict that was not delivered depended on, and after a crash a partition's new owner knows
  where its state ends: transactions below the mark were scored, delivered and applied (it skips them: scoring
  them again would read a state that holds them already); from the mark on, it scores them on the state as of the
  mark, the scores an uninterrupted run gives.
- **A fetch's changelog lands in part**: a producer that dies while a fetch's changelog is on its way can leave
  some of its account records on the topic and not the mark that follows them on their partition (a CI run caught
  it: one score 0.75 off after a SIGKILL). Each record therefore also keeps the offset past the last send it applied
  (`AccountRecord.sent`, per partition): a send its record already holds is not applied or answered again, whatever
  the mark says (its verdict was delivered before the changelog went out).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson
from rocksdict import WriteBatch

from schemas.account_state import STATE_FEATURE_NAMES, AccountRecord, cents, credits_destination
from schemas.transaction import Transaction
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import Incoming, Record

log = logging.getLogger(__name__)

# The key of a partition's mark; no account id starts with a NUL byte (ids are printable text).
MARK = b"\x00applied"


class Store(Protocol):
    """A table's local store, by partition (stream_app/accounts.py's `FaustStore`; a dict in unit tests)."""

    def get(self, partition: int, key: bytes) -> bytes | None: ...
    def write(self, partition: int, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Put every (key, value) into the partition's store, at once."""


class FaustStore:
    """The local store of a Faust table, read and written by partition (no current event needed).

    Faust's RocksDB store keeps a database per partition and finds it from the current event; its in-memory store
    is one dict. A fetch's records go into RocksDB as one write batch per partition, as Faust's own changelog
    restore writes them (one `put` each cost twice as much here). Faust's key index (which partition a key was last
    read from, for its own reads without a current event) is not filled: the scorer never reads the table through
    Faust, and Faust falls back to looking in every partition. What this leans on (`_db_for_partition`, `.data`)
    is pinned with faust-streaming (tests/stream_app/test_faust_internals.py).
    """

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, partition: int, key: bytes) -> bytes | None:
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            value = store._db_for_partition(partition).get(key)
        else:
            value = store.data.get(key)
        return None if value is None else bytes(value)

    def write(self, partition: int, items: Sequence[tuple[bytes, bytes]]) -> None:
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            batch = WriteBatch(raw_mode=True)
            for key, value in items:
                batch.put(key, value)
            store._db_for_partition(partition).write(batch)
        else:
            store.data.update(items)


@dataclass(slots=True)
class _Working:
    """A record changed by a fetch whose changes are not in the store yet."""

    record: AccountRecord
    partition: int
    changed_by: int  # the last fetch (sequence number) that changed it


@dataclass(slots=True)
class Changes:
    """What one fetch did to the table: the records it changed (as bytes at the fetch's end), its marks."""

    seq: int
    touched: set[bytes] = field(default_factory=set)  # the keys it changed
    records: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)  # key -> (partition, record bytes)
    marks: dict[int, int] = field(default_factory=dict)  # transactions partition -> next offset
    ready: bool = False  # the fetch's verdicts and credits are acknowledged
    logged: bool = False  # its changelog records too
    on_logged: Callable[[], None] | None = None


def credit_bytes(step: int, amount: float, partition: int, offset: int, now: float) -> bytes:
    """A credit as `transactions.credits` carries it: [step, cents, source partition, source offset, made at]."""
    return orjson.dumps([step, cents(amount), partition, offset, now])


class AccountTables:
    """The account table as the bulk path uses it: a working copy per fetch over the store, logged in order."""

    def __init__(self, store: Store, changelog: str, credits_topic: str, metrics: ScorerMetrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.changelog = changelog
        self.credits_topic = credits_topic
        self.working: dict[bytes, _Working] = {}
        self.marks: dict[int, int] = {}  # per transactions partition held: the mark read at its first fetch
        self.waiting: deque[Changes] = deque()  # fetches whose changelog is not produced yet, in fetch order
        self.logging: deque[Changes] = deque()  # fetches whose changelog is produced, not yet in the store
        self._seq = 0

    # --- one fetch ---

    def begin(self) -> Changes:
        self._seq += 1
        return Changes(self._seq)

    def apply_credits(self, changes: Changes, messages: Sequence[Incoming]) -> None:
        """Credits of `transactions.credits` (bad ones are logged and dropped: only this app produces them)."""
        if not messages:
            return
        made: list[float] = []
        applied = repeated = 0
        for message in messages:
            try:
                step, amount_cents, source_partition, source_offset, made_at = orjson.loads(message.value or b"")
                key = bytes(message.key or b"")
            except (ValueError, TypeError) as error:
                log.error("credit %d@%d unreadable (%s): dropped", message.partition, message.offset, error)
                continue
            record = self._record(changes, message.partition, key)
            if record.credited.get(source_partition, -1) >= source_offset:
                repeated += 1
                continue
            record.credited[source_partition] = source_offset
            record.apply_credit_cents(int(step), int(amount_cents))
            made.append(made_at)
            applied += 1
        if self.metrics is not None:
            self.metrics.account_events.labels("credit_applied").inc(applied)
            self.metrics.account_events.labels("credit_repeated").inc(repeated)
            self.metrics.credit_delay.observe_many(np.maximum(0.0, time.time() - np.asarray(made)))

    def first_new(self, sources: Sequence[Incoming]) -> list[bool]:
        """Per transaction message, whether it is past its partition's mark (False: applied before, skip it)."""
        keep = []
        for source in sources:
            mark = self.marks.get(source.partition)
            if mark is None:
                raw = self.store.get(source.partition, MARK)
                mark = self.marks[source.partition] = int(raw) if raw is not None else -1
                if source.offset < mark:
                    log.info(
                        "accounts: partition %d resumes at offset %d; offsets %d-%d were applied before (skipped)",
                        source.partition,
                        mark,
                        source.offset,
                        mark - 1,
                    )
            keep.append(source.offset >= mark)
        skipped = len(keep) - sum(keep)
        if skipped and self.metrics is not None:
            self.metrics.account_events.labels("send_skipped").inc(skipped)
        return keep

    def send_features(
        self, changes: Changes, transactions: Sequence[Transaction], sources: Sequence[Incoming]
    ) -> tuple[np.ndarray, list[Record], list[bool]]:
        """The state features of each send not yet in the table, in order (each updating its record), the credits
        to produce, and per send whether it is new.

        A send is not new when its account's record already holds it (`AccountRecord.sent`): a crash can land
        some of a fetch's changelog records and not the partition's mark that follows them, and the next owner
        then reads records past the mark. Such a send was scored and its verdict delivered (the changelog goes
        out only after that), so it is neither applied nor answered again.
        """
        rows: list[list[float]] = []
        credits: list[Record] = []
        fresh: list[bool] = []
        marks = changes.marks
        credits_topic = self.credits_topic
        now = time.time()
        for tx, source in zip(transactions, sources, strict=True):
            partition, offset = source.partition, source.offset
            record = self._record(changes, partition, tx.name_orig.encode())
            marks[partition] = offset + 1
            if record.sent.get(partition, -1) > offset:
                fresh.append(False)
                continue
            fresh.append(True)
            record.sent[partition] = offset + 1
            tx_type = tx.type.value
            rows.append(record.send_features(tx.step, tx_type, tx.amount, tx.old_balance_orig, tx.name_dest))
            if credits_destination(tx_type, tx.name_dest):
                value = credit_bytes(tx.step, tx.amount, partition, offset, now)
                credits.append(Record(credits_topic, tx.name_dest.encode(), value))
        skipped = len(fresh) - len(rows)
        if skipped and self.metrics is not None:
            self.metrics.account_events.labels("send_skipped").inc(skipped)
        out = np.array(rows, dtype=np.float64) if rows else np.empty((0, len(STATE_FEATURE_NAMES)))
        return out, credits, fresh

    def end(self, changes: Changes) -> None:
        """The fetch is done with the table: take its changes as they are now."""
        for key in changes.touched:
            entry = self.working[key]
            changes.records[key] = (entry.partition, entry.record.to_bytes())
        self.waiting.append(changes)

    # --- durability, in fetch order ---

    def delivered(self, changes: Changes, submit: Callable[[list[Record], Callable[[], None]], None]) -> None:
        """The fetch's verdicts and credits are acknowledged: produce the changelog of every fetch ready in turn."""
        changes.ready = True
        while self.waiting and self.waiting[0].ready:
            head = self.waiting.popleft()
            records = [
                Record(self.changelog, key, value, partition=partition)
                for key, (partition, value) in head.records.items()
            ]
            records += [
                Record(self.changelog, MARK, str(offset).encode(), partition=partition)
                for partition, offset in head.marks.items()
            ]
            self.logging.append(head)
            submit(records, lambda head=head: self._logged(head))  # type: ignore[misc]

    def _logged(self, changes: Changes) -> None:
        """A fetch's changelog is acknowledged. The acknowledgements of two fetches can come in either order (each
        spans partitions), so the store takes the fetches' records in fetch order, or an older record could
        overwrite a newer one."""
        changes.logged = True
        while self.logging and self.logging[0].logged:
            self._store(self.logging.popleft())

    def _store(self, changes: Changes) -> None:
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        working = self.working
        seq = changes.seq
        for key, (partition, value) in changes.records.items():
            items = by_partition.get(partition)
            if items is None:
                items = by_partition[partition] = []
            items.append((key, value))
            entry = working.get(key)
            if entry is not None and entry.changed_by == seq:
                del working[key]  # no later fetch changed it: the store has it as it is
        for partition, offset in changes.marks.items():
            by_partition.setdefault(partition, []).append((MARK, str(offset).encode()))
        for partition, items in by_partition.items():
            self.store.write(partition, items)
        if changes.on_logged is not None:
            changes.on_logged()

    def forget(self) -> None:
        """A revoke is settled: the store is what a partition's next owner restores; drop the working copies."""
        self.working.clear()
        self.marks.clear()
        self.waiting.clear()
        self.logging.clear()

    def _record(self, changes: Changes, partition: int, key: bytes) -> AccountRecord:
        entry = self.working.get(key)
        if entry is None:
            raw = self.store.get(partition, key)
            record = AccountRecord.from_bytes(raw) if raw is not None else AccountRecord()
            entry = self.working[key] = _Working(record, partition, changes.seq)
        entry.changed_by = changes.seq
        changes.touched.add(key)
        return entry.record
