"""Account memory: per-account behaviour features, defined once and computed two ways.

The rule, for a transaction t of originator A, is "the state as of the events processed so far": only events
before t in stream order count (the stream is in step order; within a step, in row order), over windows in
event time (`step`, an hour each).

- Sends of A as originator: how many and how much in the last 1 and 24 hours (a window of W hours holds the
  steps s with step(t) - W < s <= step(t)); hours since A's previous send; how many distinct destinations A has
  sent to (at most `MAX_REMEMBERED_DESTINATIONS` are remembered: the first ones); whether t's destination is new
  for A (not among the remembered); the share of A's first seen balance that its withdrawals (every type but
  CASH_IN) have moved so far, t's own included.
- Credits to A as destination (every type but CASH_IN, which takes money from the destination; merchants, the
  `M...` accounts, keep no state): how much A received in the 1 and 24 hours before t's step (a window of W
  hours holds the steps s with step(t) - W <= s < step(t)), and t's amount over what A received in the 24 hours
  before. This is the takeover's second half: a mule cashing out what it received. Credits of t's own step do
  not count: in the scorer a credit reaches the receiving account's partition through a repartition topic, a
  few milliseconds after the row that made it, so only credits of earlier steps are sure to be there (a step is
  an hour; docs/ACCOUNT_STATE.md).

Money in the state is counted in whole cents (amounts are rounded to the cent once), so the sums are exact, and
turned back into units the same way (times 0.01) by both executions, which give the same numbers bit for bit:

- `offline_features(frame)`: polars, whole frames at once (training, `momoguard evaluate`);
- `AccountRecord` with `send_features` / `apply_credit`: one account's state, updated event by event (the
  scorer's table rows). Its memory is bounded: the per-step buckets of the last 24 hours and at most
  `MAX_REMEMBERED_DESTINATIONS` destination names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import orjson
import polars as pl

# Event-time windows, in hours (steps). The feature names carry them, so a model records the ones it used.
WINDOWS: tuple[int, ...] = (1, 24)
LONGEST = max(WINDOWS)
# A destination set larger than this stops growing: an account (a merchant-like aggregator) with more distinct
# counterparties keeps the first ones, and every later one counts as new.
MAX_REMEMBERED_DESTINATIONS = 1000
# What a feature is when it has no value: no previous send, no balance to take a share of, nothing received.
NONE = -1.0

STATE_FEATURE_NAMES: tuple[str, ...] = (
    *(name for w in WINDOWS for name in (f"orig_tx_{w}h", f"orig_amount_{w}h")),
    "orig_hours_since_last",
    "orig_distinct_dests",
    "dest_new_for_orig",
    "orig_moved_share",
    *(f"received_{w}h" for w in WINDOWS),
    f"amount_over_received_{LONGEST}h",
)

# The PaySim columns the state reads, besides the stream order.
STATE_COLUMNS: tuple[str, ...] = ("step", "type", "amount", "nameOrig", "oldbalanceOrg", "nameDest")


def cents(amount: float) -> int:
    """Money as the state counts it: whole cents."""
    return round(amount * 100)


def credits_destination(tx_type: str, name_dest: str) -> bool:
    """Whether the row credits its destination with state: every type but CASH_IN, and not a merchant."""
    return tx_type != "CASH_IN" and not name_dest.startswith("M")


@dataclass(slots=True)
class AccountRecord:
    """One account's memory: its sends and credits per step (the last `LONGEST` hours), the destinations it has
    sent to (the first `MAX_REMEMBERED_DESTINATIONS`), its first seen balance and what it has moved since."""

    sends: dict[int, list[int]] = field(default_factory=dict)  # step -> [count, cents]
    credits: dict[int, int] = field(default_factory=dict)  # step -> cents received
    last_step: int | None = None  # of the previous send
    destinations: set[str] = field(default_factory=set)
    first_balance: float | None = None
    moved_cents: int = 0
    latest_step: int = -1  # the latest step seen: buckets older than its windows are dropped
    # The scorer's bookkeeping, not a feature: per transactions partition, the offset of the last transaction
    # whose credit this account applied (a credit produced twice counts once; stream_app/accounts.py).
    credited: dict[int, int] = field(default_factory=dict)
    # Per transactions partition, the offset past the last send this account applied: a send scored again after a
    # crash whose effect the table already holds is not applied twice (stream_app/accounts.py).
    sent: dict[int, int] = field(default_factory=dict)

    def send_features(self, step: int, tx_type: str, amount: float, old_balance: float, name_dest: str) -> list[float]:
        """The state features of a send by this account, then the send applied to the state. (Written for the
        scorer's hot path: one pass over the buckets per window, nothing done twice; the numbers are the same
        integer sums and products as `offline_features`'.)"""
        amount_cents = cents(amount)
        sends = self.sends
        out: list[float] = []
        for w in WINDOWS:
            count = total = 0
            if sends:
                first = step - w
                for s, (n, c) in sends.items():
                    if first < s <= step:
                        count += n
                        total += c
            out.append(float(count))
            out.append(total * 0.01)
        last_step = self.last_step
        destinations = self.destinations
        out.append(NONE if last_step is None else float(step - last_step))
        out.append(float(len(destinations)))
        new = name_dest not in destinations
        out.append(1.0 if new else 0.0)
        first_balance = self.first_balance
        if first_balance is None:
            first_balance = self.first_balance = old_balance
        if tx_type != "CASH_IN":
            self.moved_cents += amount_cents
        out.append(self.moved_cents * 0.01 / first_balance if first_balance > 0 else NONE)
        longest = 0
        for w in WINDOWS:
            received = self._received(step, w) if self.credits else 0
            out.append(received * 0.01)
            if w == LONGEST:
                longest = received
        out.append(amount_cents / longest if longest > 0 else NONE)
        # ...and the send itself.
        bucket = sends.get(step)
        if bucket is None:
            sends[step] = [1, amount_cents]
        else:
            bucket[0] += 1
            bucket[1] += amount_cents
        self.last_step = step
        if new and len(destinations) < MAX_REMEMBERED_DESTINATIONS:
            destinations.add(name_dest)
        if step > self.latest_step:
            self._seen(step)
        return out

    def apply_credit(self, step: int, amount: float) -> None:
        """Money received by this account (a row whose destination it is)."""
        self.apply_credit_cents(step, cents(amount))

    def apply_credit_cents(self, step: int, amount_cents: int) -> None:
        self.credits[step] = self.credits.get(step, 0) + amount_cents
        self._seen(step)

    def to_bytes(self) -> bytes:
        """The record as a table stores it: a JSON array of its fields in declaration order (buckets and
        destinations sorted, so equal records give equal bytes). An array, not an object: no field names in
        every record (62 bytes for a one-send account, against 162), and faster both ways."""
        return orjson.dumps(
            [
                [[s, n, c] for s, (n, c) in sorted(self.sends.items())],
                sorted(self.credits.items()),
                self.last_step,
                sorted(self.destinations),
                self.first_balance,
                self.moved_cents,
                self.latest_step,
                sorted(self.credited.items()),
                sorted(self.sent.items()),
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AccountRecord:
        raw = orjson.loads(data)
        if isinstance(raw, dict):  # the first format, a JSON object (a changelog written before the array)
            raw = [raw[name] for name in _FIELDS[:-2]] + [raw.get("credited", [])]
        if len(raw) == len(_FIELDS) - 1:  # written before records kept `sent`
            raw = [*raw, []]
        sends, credits, last_step, destinations, first_balance, moved_cents, latest_step, credited, sent = raw
        return cls(
            sends={s: [n, c] for s, n, c in sends},
            credits=dict(credits),
            last_step=last_step,
            destinations=set(destinations),
            first_balance=first_balance,
            moved_cents=moved_cents,
            latest_step=latest_step,
            credited=dict(credited),
            sent=dict(sent),
        )

    def _received(self, step: int, window: int) -> int:
        first = step - window
        total = 0
        for s, c in self.credits.items():
            if first <= s < step:
                total += c
        return total

    def _seen(self, step: int) -> None:
        if step <= self.latest_step:
            return
        self.latest_step = step
        horizon = step - LONGEST  # no event at or after `step` reads a send this old, or a credit older
        for old in [s for s in self.sends if s <= horizon]:
            del self.sends[old]
        for old in [s for s in self.credits if s < horizon]:
            del self.credits[old]


# The record's fields, in the order `to_bytes` writes them.
_FIELDS = tuple(f.name for f in fields(AccountRecord))


def online_features(frame: pl.DataFrame) -> np.ndarray:
    """The state features of every row (in the frame's row order), computed the scorer's way: one record per
    account, event by event, in stream order (`in_stream_order`). What `offline_features` must agree with."""
    ordered = in_stream_order(_state_columns(frame).with_row_index("row"))
    records: dict[str, AccountRecord] = {}
    out = np.empty((frame.height, len(STATE_FEATURE_NAMES)))
    rows = ordered.select("row", *STATE_COLUMNS).iter_rows()
    for i, step, tx_type, amount, name_orig, old_balance, name_dest in rows:
        record = records.setdefault(name_orig, AccountRecord())
        out[i] = record.send_features(step, tx_type, amount, old_balance, name_dest)
        if credits_destination(tx_type, name_dest):
            records.setdefault(name_dest, AccountRecord()).apply_credit(step, amount)
    return out


def _state_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """The columns the state reads, as plain types (a frame may hold the names and types as categories)."""
    text = ("type", "nameOrig", "nameDest")
    return frame.select(
        pl.col(c).cast(pl.Utf8) if c in text else pl.col(c).cast(pl.Int64 if c == "step" else pl.Float64)
        for c in STATE_COLUMNS
    )


def in_stream_order(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows in the order the state sees them: by step, and in row order within a step."""
    return frame.sort("step", maintain_order=True)


def offline_features(frame: pl.DataFrame) -> np.ndarray:
    """The state features of every row of `frame` (in the frame's row order), point in time: each row sees only
    the rows before it in stream order. Whole columns at once: cumulative sums per account, as-of joins for the
    windows."""
    base = in_stream_order(_state_columns(frame).with_row_index("row")).with_row_index("seq")
    base = base.with_columns(
        cents=(pl.col("amount") * 100).round().cast(pl.Int64),
        withdraws=pl.col("type") != "CASH_IN",
    )
    sends = base.sort("nameOrig", "seq").with_columns(
        before=pl.int_range(pl.len()).over("nameOrig"),
        cum_cents=pl.col("cents").cum_sum().over("nameOrig"),
        previous_step=pl.col("step").shift(1).over("nameOrig"),
        first_balance=pl.col("oldbalanceOrg").first().over("nameOrig"),
        moved=(pl.col("cents") * pl.col("withdraws")).cum_sum().over("nameOrig"),
        first_to_dest=pl.col("seq") == pl.col("seq").min().over("nameOrig", "nameDest"),
    )
    sends = sends.with_columns(distinct_upto=pl.col("first_to_dest").cum_sum().over("nameOrig"))
    sends = sends.with_columns(
        distinct_before=pl.col("distinct_upto") - pl.col("first_to_dest"),
        # The place of the destination among the account's distinct ones, by first use.
        dest_rank=pl.when(pl.col("first_to_dest")).then(pl.col("distinct_upto")).max().over("nameOrig", "nameDest"),
    )
    # The last send of each account in each step: what an as-of join on the step finds at a window's edge.
    per_step = sends.group_by("nameOrig", "step").agg(
        edge_count=pl.col("before").max() + 1, edge_cents=pl.col("cum_cents").max()
    )
    per_step = per_step.sort("step")
    columns: dict[str, pl.Expr] = {}
    for w in WINDOWS:
        sends = (
            _at_window_edge(sends, per_step, w)
            .with_columns(
                pl.col("edge_count").fill_null(0).alias(f"edge_count_{w}"),
                pl.col("edge_cents").fill_null(0).alias(f"edge_cents_{w}"),
            )
            .drop("edge_count", "edge_cents")
        )
        columns[f"orig_tx_{w}h"] = (pl.col("before") - pl.col(f"edge_count_{w}")).cast(pl.Float64)
        columns[f"orig_amount_{w}h"] = (pl.col("cum_cents") - pl.col("cents") - pl.col(f"edge_cents_{w}")) * 0.01
    columns["orig_hours_since_last"] = (pl.col("step") - pl.col("previous_step")).cast(pl.Float64).fill_null(NONE)
    columns["orig_distinct_dests"] = pl.min_horizontal(
        pl.col("distinct_before"), pl.lit(MAX_REMEMBERED_DESTINATIONS)
    ).cast(pl.Float64)
    columns["dest_new_for_orig"] = (pl.col("first_to_dest") | (pl.col("dest_rank") > MAX_REMEMBERED_DESTINATIONS)).cast(
        pl.Float64
    )
    columns["orig_moved_share"] = (
        pl.when(pl.col("first_balance") > 0)
        .then(pl.col("moved") * 0.01 / pl.col("first_balance"))
        .otherwise(pl.lit(NONE))
    )
    sends = sends.with_columns(**columns)

    received = _received(base, sends.select("seq", "nameOrig", "step"))
    out = sends.join(received, on="seq").sort("row")
    longest = pl.col(f"received_cents_{LONGEST}")
    out = out.with_columns(
        *((pl.col(f"received_cents_{w}") * 0.01).alias(f"received_{w}h") for w in WINDOWS),
        pl.when(longest > 0)
        .then(pl.col("cents") / longest)
        .otherwise(pl.lit(NONE))
        .alias(f"amount_over_received_{LONGEST}h"),
    )
    return out.select(*STATE_FEATURE_NAMES).cast(pl.Float64).to_numpy()


def _received(base: pl.DataFrame, sends: pl.DataFrame) -> pl.DataFrame:
    """Per send (`seq`): the cents its originator received in each window from rows before it."""
    credits = (
        base.filter((pl.col("type") != "CASH_IN") & ~pl.col("nameDest").str.starts_with("M"))  # credits_destination
        .select(pl.col("nameDest").alias("nameOrig"), "seq", "step", "cents")
        .sort("nameOrig", "seq")
        .with_columns(cum=pl.col("cents").cum_sum().over("nameOrig"))
    )
    per_step = credits.group_by("nameOrig", "step").agg(cum_edge=pl.col("cum").max()).sort("step")
    # What the account had received up to the step before the send's, less what it had up to the step before
    # the window's first (steps step - w .. step - 1 remain).
    out = _at_window_edge(sends, per_step, 1).with_columns(cum_upto=pl.col("cum_edge").fill_null(0)).drop("cum_edge")
    for w in WINDOWS:
        out = (
            _at_window_edge(out, per_step, w + 1)
            .with_columns((pl.col("cum_upto") - pl.col("cum_edge").fill_null(0)).alias(f"received_cents_{w}"))
            .drop("cum_edge")
        )
    return out.select("seq", *(f"received_cents_{w}" for w in WINDOWS))


def _at_window_edge(rows: pl.DataFrame, per_step: pl.DataFrame, window: int) -> pl.DataFrame:
    """`rows` with, per row, the account's `per_step` totals as of the last step outside the row's window
    (at or before `step - window`): what the window's sums subtract. Null where the account had none."""
    return (
        rows.with_columns(edge=pl.col("step") - window)
        .sort("edge")
        .join_asof(
            per_step.rename({"step": "edge_step"}),
            left_on="edge",
            right_on="edge_step",
            by="nameOrig",
            strategy="backward",
            check_sortedness=False,  # sorted by the key, so within each account too
        )
        .drop("edge", "edge_step")
    )
