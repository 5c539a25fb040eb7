"""The desk's lists in a worker's memory: entries by account and side, two dict lookups per transaction.

Precedence, applied by `ListTable.matches` (docs/SCORER.md says the same):

1. An entry applies to the transactions its account sends (direction `orig`), receives (`dest`), or both, until
   it expires; one entry per account (a later one for the same account replaces it).
2. A matching entry decides, whatever the model's score: an `allow` entry lets through a transaction the model
   would block or review, a `block` entry blocks one it would allow, a `review` entry sends it to review.
3. When the sender's and the recipient's entries both match, the stricter action wins (block over review over
   allow): an allowed customer paying a blocked mule account is blocked. On a tie the sender's entry is named.

Records come from the compacted topic `momoguard.lists` (stream_app/list_topic.py reads it): key the account,
value a `schemas.lists.ListEntry` as JSON, a tombstone (null value) removing the account's entry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from pydantic import ValidationError

from schemas.lists import ListEntry
from schemas.transaction import Transaction
from schemas.verdict import ListAction, ListHit

ACTIONS: tuple[ListAction, ...] = get_args(ListAction)
# Stricter actions rank higher: where two entries meet in one transaction, the higher one decides.
RANK: dict[str, int] = {"allow": 0, "review": 1, "block": 2}


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry as the hot path uses it: its rank, expiry as a number, and the two hits a verdict may name."""

    entry: ListEntry
    rank: int
    expires_at: float  # seconds since the epoch; inf: never
    as_orig: ListHit
    as_dest: ListHit


def listed(entry: ListEntry) -> Listed:
    def hit(side: str) -> ListHit:
        return ListHit(
            entry.account,
            side,  # type: ignore[arg-type]
            entry.direction,
            entry.action,
            entry.reason,
            entry.added_by,
            entry.added_at,
            entry.expires_at,
        )

    expires = math.inf if entry.expires_at is None else entry.expires_at.timestamp()
    return Listed(entry, RANK[entry.action], expires, hit("orig"), hit("dest"))


@dataclass(frozen=True, slots=True)
class Malformed:
    """A record of the lists topic that is not an entry or a tombstone: logged and ignored."""

    reason: str
    error: str


def parse_list_record(key: bytes | None, value: bytes | None) -> ListEntry | Malformed | None:
    """An entry, None for a tombstone (the key's entry is removed), or Malformed saying what is wrong."""
    if not key:
        return Malformed("no_key", "a list record needs the account as its key")
    try:
        account = key.decode()
    except UnicodeDecodeError:
        return Malformed("bad_key", f"the key is not UTF-8 ({len(key)} bytes)")
    if value is None:
        return None
    try:
        entry = ListEntry.model_validate_json(value)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "value"
        return Malformed("invalid", f"{where}: {first['msg']}"[:300])
    if entry.account != account:
        return Malformed("key_mismatch", f"key {account[:64]!r} is not the entry's account {entry.account!r}")
    return entry


class ListTable:
    """Every entry read so far (expired ones too, until removed), indexed by the side of a transaction it covers.

    Written by one reader thread and read by the scorer on the event loop: single dict operations are atomic in
    CPython, and a transaction scored while an entry changes sees it before or after the change, either of which
    is right.
    """

    def __init__(self) -> None:
        self.entries: dict[str, Listed] = {}
        self.orig: dict[str, Listed] = {}  # entries covering the transactions an account sends
        self.dest: dict[str, Listed] = {}  # ... and those it receives

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, entry: ListEntry) -> Listed | None:
        """Add or replace the account's entry; returns the one it replaced."""
        new = listed(entry)
        account = entry.account
        previous = self.entries.get(account)
        self.entries[account] = new
        for side, covers in ((self.orig, ("orig", "both")), (self.dest, ("dest", "both"))):
            if entry.direction in covers:
                side[account] = new
            else:
                side.pop(account, None)
        return previous

    def remove(self, account: str) -> Listed | None:
        """Drop the account's entry; returns it (None if it had none)."""
        self.orig.pop(account, None)
        self.dest.pop(account, None)
        return self.entries.pop(account, None)

    def matches(self, transactions: Sequence[Transaction], now: float) -> list[tuple[int, ListHit]]:
        """(position, hit) for each transaction an entry in force decides, by the precedence above."""
        if not self.orig and not self.dest:
            return []
        by_orig, by_dest = self.orig.get, self.dest.get
        hits: list[tuple[int, ListHit]] = []
        for i, tx in enumerate(transactions):
            sender = by_orig(tx.name_orig)
            recipient = by_dest(tx.name_dest)
            if sender is None and recipient is None:
                continue
            if sender is not None and sender.expires_at <= now:
                sender = None
            if recipient is not None and recipient.expires_at <= now:
                recipient = None
            if recipient is not None and (sender is None or recipient.rank > sender.rank):
                hits.append((i, recipient.as_dest))
            elif sender is not None:
                hits.append((i, sender.as_orig))
        return hits

    def in_force(self, at: datetime) -> list[ListEntry]:
        """The entries not yet expired, by account."""
        now = at.timestamp()
        return [e.entry for _, e in sorted(self.entries.items()) if e.expires_at > now]

    def counts(self, at: datetime) -> dict[str, int]:
        """Entries in force by action (every action named, 0 when none)."""
        counts: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        for entry in self.in_force(at):
            counts[entry.action] += 1
        return counts
