"""Generate PaySim months: PaySim v1's mechanics, vectorised with numpy, calibrated on the Kaggle data.

A month is made in two passes. First every genuine client, for the whole month at once: how many rows each
type has per step, cut into client chains (a client acting again in the same step, each row starting from
the balance the previous left), amounts from the hour's calibrated distribution, first balances from the
balance histogram. Then, step by step, the accounts that receive money: destinations picked among the
accounts opened so far, fraudsters taking over accounts and emptying them through mules, and the
destination balances PaySim logs (before the row, and as they stand at the end of the hour).
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import numpy as np
import polars as pl

from core.errors import ConfigError, DataError
from paysim.calibration import Calibration, load_calibration
from paysim.javafmt import java_doubles
from paysim.reader import MONEY_COLUMNS, PAYSIM_SCHEMA
from schemas.transaction import TX_TYPES

logger = logging.getLogger(__name__)

CASH_IN, CASH_OUT, DEBIT, PAYMENT, TRANSFER = (TX_TYPES.index(t) for t in TX_TYPES)
# Java's Random.nextInt hash codes name PaySim's accounts: "C" or "M" and a positive 31-bit number.
_NAME_LIMIT = 2**31 - 1
# Rows of the CSV formatted and written at a time (bounds the memory of the text columns).
_WRITE_BATCH = 500_000
# Peak memory of `generate`, measured: 289-296 bytes per row at scale 0.25 and 1 (docs/BENCHMARKS.md), and the
# per-step arrays; a little over, so a month that is refused would not have fitted.
_BYTES_PER_ROW = 320
_BYTES_PER_STEP = 256
# With repeat clients a mule cashes out 1 to this many hours after it received the chunk (uniformly).
MULE_DELAY_HOURS = 3


@dataclass
class _Rows:
    """Columns of generated rows; `dest` is an account index, or -1 for a merchant or a fresh mule.

    `orig` is the originator's account index, or -1 for a fresh name (always, except with repeat clients);
    `mule` numbers the mule of a fraud TRANSFER (its destination) and of its CASH_OUT (its originator) with
    repeat clients, else -1.
    """

    step: np.ndarray
    tx_type: np.ndarray
    amount: np.ndarray
    old_orig: np.ndarray
    new_orig: np.ndarray
    dest: np.ndarray
    old_dest: np.ndarray
    new_dest: np.ndarray
    fraud: np.ndarray
    flagged: np.ndarray
    orig: np.ndarray
    mule: np.ndarray

    @classmethod
    def concat(cls, parts: list[_Rows]) -> _Rows:
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__})

    def take(self, index: np.ndarray) -> _Rows:
        return _Rows(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


@dataclass
class _Clients:
    """All genuine originator rows of the month, sorted by step and then by their order within the step."""

    step: np.ndarray
    tx_type: np.ndarray
    amount: np.ndarray
    old_orig: np.ndarray
    new_orig: np.ndarray
    key: np.ndarray  # position of the row's client within its step, in [0, 1)
    sub: np.ndarray  # position of the row within its client's chain
    account_step: np.ndarray  # per client (in row order): the step it acted in
    account_balance: np.ndarray  # per client: the balance its chain left, with which it joins the accounts


@dataclass
class _TransferWatch:
    """PaySim's checkBalanceDropping state per account: transfers seen (up to 3) and the highest balance then."""

    count: np.ndarray
    mark: np.ndarray


def check_arguments(steps: int, scale: float, seed: int = 0) -> None:
    """Raise a one-line ConfigError for a month that cannot be generated."""
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if not np.isfinite(scale) or scale <= 0:
        raise ConfigError(f"scale must be > 0, got {scale}")


def check_memory(steps: int, scale: float) -> None:
    """Raise a one-line ConfigError when the month would need more memory than the machine has available."""
    from core.machine import available_memory_bytes

    rows = expected_rows(steps, scale)
    needed = rows * _BYTES_PER_ROW + steps * _BYTES_PER_STEP
    available = available_memory_bytes()
    if needed > available:
        fits = max(int((available - steps * _BYTES_PER_STEP) / _BYTES_PER_ROW), 0)
        raise ConfigError(
            f"{steps} steps at scale {scale:g} make about {rows:,} rows and need about {_size(needed)} of memory, "
            f"but {_size(available)} is available: ask for at most ~{fits:,} rows (a smaller scale)"
        )


def _size(n_bytes: float) -> str:
    """Bytes in decimal units, such as 23.4 GB."""
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000:
            return f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return f"{n_bytes:,.1f} TB"


def expected_rows(steps: int = 743, scale: float = 1.0) -> int:
    """How many rows `generate(steps, scale)` makes on average (genuine plus fraud)."""
    check_arguments(steps, scale)
    calibration = load_calibration()
    genuine = _expected_genuine(calibration, steps, scale).sum()
    return int(round(genuine + steps * scale * calibration.fraud_rows_per_step))


def generate(steps: int = 743, scale: float = 1.0, seed: int = 0, repeat_clients: bool = False) -> pl.DataFrame:
    """A PaySim frame of `steps` hours at `scale` times the Kaggle volume; the same seed gives the same rows.

    `--steps 743 --scale 1` is Kaggle size (about 6.36 million rows, 0.13 % fraud, ~1.9 GB at the peak).
    A month that would not fit in the memory available is refused before anything is made.

    `repeat_clients` (opt-in, a deviation from Kaggle's month: docs/GENERATOR.md) lets accounts act again as
    originators, from the balance they hold, at PaySim v2's per-type repeat shares; a victim's fraud rows carry
    its own name, and each mule cashes out, under its name, what it received. Without it the rows are exactly
    those of the default month.
    """
    check_arguments(steps, scale, seed)
    check_memory(steps, scale)
    calibration = load_calibration()
    clients_rng, amounts_rng, accounts_rng, fraud_rng, names_rng, repeat_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)
    )
    counts = _stochastic_round(_expected_genuine(calibration, steps, scale), clients_rng)
    clients = _clients(calibration, counts, clients_rng, amounts_rng)
    repeat = _Repeat(calibration.repeat_share, repeat_rng) if repeat_clients else None
    rows = _simulate(calibration, clients, counts, scale, accounts_rng, fraud_rng, amounts_rng, repeat)
    logger.info(
        "generated %d rows over %d steps at scale %g (seed %d%s)",
        rows.step.size,
        steps,
        scale,
        seed,
        ", repeat clients" if repeat_clients else "",
    )
    return _frame(rows, names_rng)


@dataclass
class _Repeat:
    """The repeat-client mode: per type the share of chains by an existing account, and its own random stream."""

    share: np.ndarray
    rng: np.random.Generator
    mules: int = 0  # mules numbered so far
    later: dict[int, list[_Rows]] = field(default_factory=dict)  # step -> the mules' cash-outs due then

    def originators(self, tx_type: np.ndarray, sub: np.ndarray, active: int) -> np.ndarray:
        """Per row, the account whose chain it is (-1: a fresh client); one chain per account in a step."""
        first = np.flatnonzero(sub == 0)
        chain = np.cumsum(sub == 0) - 1
        account = np.full(first.size, -1, dtype=np.int64)
        if active == 0 or first.size == 0:
            return account[chain] if chain.size else np.empty(0, dtype=np.int64)
        again = self.rng.random(first.size) < self.share[tx_type[first]]
        account[again] = self.rng.integers(0, active, int(again.sum()))
        picked = np.flatnonzero(account >= 0)
        _, once = np.unique(account[picked], return_index=True)
        repeated = np.ones(picked.size, dtype=bool)
        repeated[once] = False
        account[picked[repeated]] = -1  # an account already acting this step: a fresh client instead
        return account[chain]

    def number_mules(self, n: int) -> np.ndarray:
        numbers = np.arange(self.mules, self.mules + n, dtype=np.int64)
        self.mules += n
        return numbers

    def defer(self, cash_outs: _Rows, step: int) -> None:
        """The mules' cash-outs of a step's chunks, each 1 to MULE_DELAY_HOURS hours later."""
        delay = self.rng.integers(1, MULE_DELAY_HOURS + 1, cash_outs.step.size)
        for d in np.unique(delay).tolist():
            due = cash_outs.take(np.flatnonzero(delay == d))
            due.step[:] = step + d
            self.later.setdefault(step + d, []).append(due)

    def due(self, step: int) -> tuple[_Rows, np.ndarray, np.ndarray]:
        """The cash-outs due in `step` (after the month's last step they are never made), with order keys."""
        rows = _Rows.concat(self.later.pop(step, [_empty_rows()]))
        return rows, self.rng.random(rows.step.size), np.zeros(rows.step.size, dtype=np.int32)


OUTPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def check_output(path: Path) -> str:
    """The output's kind (one of OUTPUT_SUFFIXES); a one-line error for another name or a missing folder."""
    name = Path(path).name.lower()
    suffix = next((s for s in OUTPUT_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise ConfigError(f"output must end in {', '.join(OUTPUT_SUFFIXES)}, got {Path(path).name!r}")
    if not Path(path).parent.is_dir():
        raise DataError(f"output folder does not exist: {Path(path).parent}")
    return suffix


def write_paysim(frame: pl.DataFrame, path: Path) -> None:
    """Write a PaySim frame as a Kaggle-format CSV (Java-style numbers such as 1.916920493E7), gzipped or
    not, or as Parquet (with its tx_id column); every reader of `paysim.reader` reads each of them back."""
    path = Path(path)
    suffix = check_output(path)
    if suffix == ".parquet":
        frame.write_parquet(path)
        return
    columns = [c for c in PAYSIM_SCHEMA if c != "tx_id"]
    gzipped = suffix == ".csv.gz"
    opened = cast(IO[bytes], gzip.open(path, "wb", compresslevel=6)) if gzipped else path.open("wb")
    with opened as handle:
        for offset in range(0, max(frame.height, 1), _WRITE_BATCH):
            batch = frame.slice(offset, _WRITE_BATCH).select(columns)
            batch = batch.with_columns(java_doubles(batch[c]) for c in MONEY_COLUMNS)
            batch.write_csv(handle, include_header=offset == 0, line_terminator="\n")


def _expected_genuine(calibration: Calibration, steps: int, scale: float) -> np.ndarray:
    """(types, steps) expected genuine rows per type and step; a month longer than the profile repeats it."""
    index = np.arange(1, steps + 1) % calibration.period
    weights = calibration.type_weights()[:, index]
    return calibration.genuine_rows[:, None] * scale * weights


def _stochastic_round(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    whole = np.floor(expected)
    return (whole + (rng.random(expected.shape) < expected - whole)).astype(np.int64)


def _clients(
    calibration: Calibration, counts: np.ndarray, rng: np.random.Generator, amounts_rng: np.random.Generator
) -> _Clients:
    """Every genuine originator row of the month, with chains, amounts and originator balances."""
    steps = counts.shape[1]
    rows: list[tuple[np.ndarray, ...]] = []
    chains: list[tuple[np.ndarray, ...]] = []
    offset = 0
    for tx_type in range(len(TX_TYPES)):
        per_step = counts[tx_type]
        total = int(per_step.sum())
        if total == 0:
            continue
        # A chain ends where its drawn length ends or where the step ends, whichever comes first.
        lengths = _chain_lengths(calibration, tx_type, total, rng)
        starts = np.zeros(total, dtype=bool)
        starts[0] = True
        chain_ends = np.cumsum(lengths)
        starts[chain_ends[chain_ends < total]] = True
        step_ends = np.cumsum(per_step)
        starts[step_ends[step_ends < total]] = True
        row_step = np.repeat(np.arange(1, steps + 1, dtype=np.int32), per_step)
        first = np.flatnonzero(starts)
        chain = np.cumsum(starts) - 1

        amount = _amounts(calibration, tx_type, row_step, amounts_rng)
        start_balance = _start_balances(calibration, first.size, rng)
        old, new = _chain_balances(amount, chain, first, start_balance, deposit=tx_type == CASH_IN)
        # Kaggle's genuine rows never move exactly the whole balance (frauds do); a cent apart is the same.
        for _ in range(10):
            same = (old > 0) & (np.abs(amount - old) <= 0.01 + 1e-9)
            if not same.any():
                break
            amount[same] = np.round(amount[same] + 0.02, 2)
            old, new = _chain_balances(amount, chain, first, start_balance, deposit=tx_type == CASH_IN)
        rows.append((row_step, np.full(total, tx_type, dtype=np.int8), amount, old, new))
        chains.append((first + offset, np.diff(np.r_[first, total]), row_step[first]))
        offset += total

    if not rows:
        empty_f, empty_i = np.empty(0), np.empty(0, dtype=np.int32)
        return _Clients(
            empty_i, np.empty(0, dtype=np.int8), empty_f, empty_f, empty_f, empty_f, empty_i, empty_i, empty_f
        )
    step, tx_type_col, amount, old, new = (np.concatenate(c) for c in zip(*rows, strict=True))
    first, length, chain_step = (np.concatenate(c) for c in zip(*chains, strict=True))
    # Clients of a step act in random order, types interleaved; a client's rows stay together.
    key = rng.random(first.size)
    order = np.argsort(chain_step + key, kind="stable")
    first, length, key = first[order], length[order], key[order]
    placed = np.cumsum(length) - length
    index = np.repeat(first - placed, length) + np.arange(step.size)
    sub = (np.arange(step.size) - np.repeat(placed, length)).astype(np.int32)
    step, tx_type_col, amount, old, new = step[index], tx_type_col[index], amount[index], old[index], new[index]
    # After acting, some clients join the accounts that money is sent to, holding what their chain left.
    # A step's first client always joins, so a step with clients always has an account to send to.
    joins = rng.random(first.size) < calibration.account_share
    joins[np.r_[True, step[placed[1:]] != step[placed[:-1]]]] = True
    last = (placed + length - 1)[joins]
    return _Clients(step, tx_type_col, amount, old, new, np.repeat(key, length), sub, step[last], new[last].copy())


def _chain_lengths(calibration: Calibration, tx_type: int, total: int, rng: np.random.Generator) -> np.ndarray:
    """Chain lengths whose sum reaches `total` rows: a segment by its probability, a length uniform in it."""
    segments, probabilities = calibration.chain_segments[tx_type], calibration.chain_probabilities[tx_type]
    mean = float(((segments[:, 0] + segments[:, 1]) / 2 * probabilities).sum())
    drawn: list[np.ndarray] = []
    covered = 0
    while covered < total:
        size = int((total - covered) / mean * 1.1) + 16
        segment = rng.choice(segments.shape[0], size=size, p=probabilities)
        lengths = rng.integers(segments[segment, 0], segments[segment, 1] + 1)
        drawn.append(lengths)
        covered += int(lengths.sum())
    return np.concatenate(drawn)


def _amounts(calibration: Calibration, tx_type: int, step: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Amounts of one type at these steps: Gamma with the hour's mean and spread, to the cent, positive.

    The operator's table gives a mean and standard deviation per hour; the Kaggle amounts are right-skewed
    (median well below the mean), which a Gamma with those two moments matches and a Gaussian does not.
    """
    mean, cv = calibration.amount_moments(tx_type, step)
    cv2 = cv**2
    return np.maximum(np.round(rng.gamma(1.0 / cv2, mean * cv2), 2), 0.01)


def _start_balances(calibration: Calibration, n: int, rng: np.random.Generator) -> np.ndarray:
    """First balances of `n` clients: whole units from the calibrated histogram, some exactly 0."""
    quantiles = calibration.start_quantiles
    balance = np.floor(np.interp(rng.random(n), np.linspace(0, 1, quantiles.size), quantiles))
    balance[rng.random(n) < calibration.start_zero_share] = 0.0
    return balance


def _chain_balances(
    amount: np.ndarray, chain: np.ndarray, first: np.ndarray, start: np.ndarray, *, deposit: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Originator balances along each chain; a withdrawal larger than the balance leaves 0 (PaySim's rule)."""
    running = np.cumsum(amount)
    within = running - (running[first] - amount[first])[chain]
    new = start[chain] + within if deposit else np.maximum(start[chain] - within, 0.0)
    new = np.round(new, 2)
    old = np.empty_like(new)
    old[1:] = new[:-1]
    old[first] = start
    return old, new


def _simulate(
    calibration: Calibration,
    clients: _Clients,
    counts: np.ndarray,
    scale: float,
    rng: np.random.Generator,
    fraud_rng: np.random.Generator,
    amounts_rng: np.random.Generator,
    repeat: _Repeat | None = None,
) -> _Rows:
    """Step by step: destinations, frauds, and destination balances before each row and at the hour's end.

    With repeat clients, an account's own chain starts from what it holds as the hour begins, and what the
    chain moves is netted with the hour's credits when the hour ends.
    """
    steps = counts.shape[1]
    # The accounts are the clients who have acted so far (this step's included), with what they hold: the
    # first hours reuse few accounts, as Kaggle's do.
    balance = clients.account_balance
    watch = _TransferWatch(np.zeros(balance.size, dtype=np.int8), np.zeros(balance.size))
    opened = np.searchsorted(clients.account_step, np.arange(1, steps + 1), side="right")
    bounds = np.searchsorted(clients.step, np.arange(1, steps + 2), side="left")
    takeovers = np.asarray(fraud_rng.poisson(calibration.takeovers_per_step * scale, size=steps))

    out: list[_Rows] = []
    for s in range(1, steps + 1):
        lo, hi = bounds[s - 1], bounds[s]
        active = int(opened[s - 1])
        genuine, genuine_key, genuine_sub = _genuine_step(calibration, clients, lo, hi, balance, active, rng)
        own = np.empty((2, 0))
        if repeat is not None:
            own = _restart_chains(
                genuine, genuine_sub, repeat.originators(genuine.tx_type, genuine_sub, active), balance
            )
        if active == 0:
            takeovers[s - 1] = 0
        fraud, fraud_key, fraud_sub, drained, drain_key = _fraud_step(
            calibration, s, int(takeovers[s - 1]), balance, watch, active, fraud_rng, amounts_rng, repeat
        )
        if repeat is not None:  # the mules of earlier hours cash out
            due, due_key, due_sub = repeat.due(s)
            fraud = _Rows.concat([fraud, due])
            fraud_key, fraud_sub = np.concatenate([fraud_key, due_key]), np.concatenate([fraud_sub, due_sub])
        rows = _Rows.concat([genuine, fraud])
        order = np.lexsort((np.concatenate([genuine_sub, fraud_sub]), np.concatenate([genuine_key, fraud_key])))
        rows = rows.take(order)
        row_key = np.concatenate([genuine_key, fraud_key])[order]
        _settle_destinations(rows, balance, drained, drain_key, row_key)
        if own.size:
            account = own[0].astype(np.int64)
            balance[account] = np.round(np.maximum(balance[account] + own[1], 0.0), 2)
        out.append(rows)
    return _Rows.concat(out) if out else _Rows.concat([_empty_rows()])


def _genuine_step(
    calibration: Calibration,
    clients: _Clients,
    lo: int,
    hi: int,
    balance: np.ndarray,
    active: int,
    rng: np.random.Generator,
) -> tuple[_Rows, np.ndarray, np.ndarray]:
    """The step's genuine rows with their destination accounts (balances are filled in later)."""
    n = hi - lo
    tx_type = clients.tx_type[lo:hi]
    amount = clients.amount[lo:hi]
    dest = np.full(n, -1, dtype=np.int64)
    to_client = tx_type != PAYMENT
    uniform = to_client & (clients.sub[lo:hi] == 0) & calibration.uniform_first[tx_type]
    if uniform.any():
        dest[uniform] = rng.integers(0, active, int(uniform.sum()))
    covering = to_client & ~uniform
    dest[covering] = _covering_pick(balance, active, amount[covering], calibration.destination_candidates, rng)
    zeros = np.zeros(n)
    rows = _Rows(
        step=clients.step[lo:hi],
        tx_type=tx_type,
        amount=amount,
        old_orig=clients.old_orig[lo:hi],
        new_orig=clients.new_orig[lo:hi],
        dest=dest,
        old_dest=zeros,
        new_dest=zeros.copy(),
        fraud=np.zeros(n, dtype=np.int8),
        flagged=np.zeros(n, dtype=np.int8),
        orig=np.full(n, -1, dtype=np.int64),
        mule=np.full(n, -1, dtype=np.int64),
    )
    return rows, clients.key[lo:hi], clients.sub[lo:hi]


def _restart_chains(rows: _Rows, sub: np.ndarray, account: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """Give the chains of existing accounts their account and re-run their balances from what it holds.

    Returns (2, accounts): each account and what its chain changed, applied when the hour ends.
    """
    rows.orig = account
    chain = np.cumsum(sub == 0) - 1
    changes: list[np.ndarray] = []
    for deposit in (True, False):
        mine = np.flatnonzero((account >= 0) & ((rows.tx_type == CASH_IN) == deposit))
        if mine.size == 0:
            continue
        starts = np.r_[True, chain[mine][1:] != chain[mine][:-1]]
        first = np.flatnonzero(starts)
        start = balance[account[mine][first]]
        old, new = _chain_balances(rows.amount[mine], np.cumsum(starts) - 1, first, start, deposit=deposit)
        rows.old_orig[mine], rows.new_orig[mine] = old, new
        last = np.r_[first[1:], mine.size] - 1
        changes.append(np.stack([account[mine][first].astype(np.float64), new[last] - start]))
    return np.concatenate(changes, axis=1) if changes else np.empty((2, 0))


def _covering_pick(
    balance: np.ndarray, active: int, amount: np.ndarray, candidates: int, rng: np.random.Generator
) -> np.ndarray:
    """For each amount an account holding at least that much (PaySim redraws until one does).

    A handful of random candidates stands in for PaySim's unbounded redraws: the first that covers the
    amount wins, else the richest of them.
    """
    if amount.size == 0:
        return np.empty(0, dtype=np.int64)
    drawn = rng.integers(0, active, size=(amount.size, candidates))
    held = balance[drawn]
    covers = held >= amount[:, None]
    pick = np.where(covers.any(axis=1), covers.argmax(axis=1), held.argmax(axis=1))
    return drawn[np.arange(amount.size), pick]


def _fraud_step(
    calibration: Calibration,
    step: int,
    takeovers: int,
    balance: np.ndarray,
    watch: _TransferWatch,
    active: int,
    rng: np.random.Generator,
    amounts_rng: np.random.Generator,
    repeat: _Repeat | None = None,
) -> tuple[_Rows, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Account takeovers of one step: each victim's balance TRANSFERred in chunks to fresh mules, which
    CASH_OUT at once; sometimes the victim then acts itself (labelled fraud, as PaySim does).

    Returns the rows with their order keys, and the victims with the key at which they are emptied.
    """
    victims = _victims(balance, active, takeovers, rng)
    if victims.size == 0:
        return _empty_rows(), np.empty(0), np.empty(0, dtype=np.int32), victims, np.empty(0)
    limit = calibration.transfer_limit
    event_key = rng.random(victims.size)
    start = balance[victims]
    chunks = np.ceil(start / limit).astype(np.int64)

    parts: list[dict[str, np.ndarray]] = []
    held = start.copy()  # what each victim still holds
    scheduled = start.copy()  # PaySim's fraudster counts down its own copy of the balance
    for j in range(int(chunks.max())):
        doing = np.flatnonzero(chunks > j)
        amount = np.minimum(scheduled[doing], limit)
        # PaySim's checkBalanceDropping: an account's first three transfers only record its highest balance;
        # from the fourth on, a fall of more than 2.5 limits below that mark is flagged and moves nothing
        # (the mule then cashes out 0). Only accounts robbed of tens of millions before ever get there.
        account = victims[doing]
        watched = watch.count[account] >= 3
        flagged = watched & (watch.mark[account] - held[doing] - amount > calibration.flag_drop_limits * limit)
        learning = account[~watched]
        watch.mark[learning] = np.maximum(watch.mark[learning], held[doing][~watched])
        watch.count[learning] += 1
        moved = np.where(flagged, 0.0, np.minimum(amount, held[doing]))
        before = held[doing].copy()
        held[doing] -= moved
        scheduled[doing] -= amount
        parts.append(
            {
                "victim": doing,
                "amount": amount,
                "before": before,
                "after": held[doing].copy(),
                "flagged": flagged,
                "moved": moved,
                "sub": np.full(doing.size, 2 * j, dtype=np.int32),
            }
        )
    chunk = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = chunk["victim"].size
    cash_out_dest = rng.integers(0, active, n)
    # With repeat clients the victim's rows carry its name, and each chunk's mule cashes out under its own.
    victim_name = victims[chunk["victim"]] if repeat is not None else np.full(n, -1, dtype=np.int64)
    mule = repeat.number_mules(n) if repeat is not None else np.full(n, -1, dtype=np.int64)

    transfer = _Rows(
        step=np.full(n, step, dtype=np.int32),
        tx_type=np.full(n, TRANSFER, dtype=np.int8),
        amount=np.round(chunk["amount"], 2),
        old_orig=np.round(chunk["before"], 2),
        new_orig=np.round(chunk["after"], 2),
        dest=np.full(n, -1, dtype=np.int64),
        old_dest=np.zeros(n),
        new_dest=np.zeros(n),
        fraud=np.ones(n, dtype=np.int8),
        flagged=chunk["flagged"].astype(np.int8),
        orig=victim_name,
        mule=mule,
    )
    cash_out = _Rows(
        step=np.full(n, step, dtype=np.int32),
        tx_type=np.full(n, CASH_OUT, dtype=np.int8),
        amount=np.round(chunk["moved"], 2),
        old_orig=np.round(chunk["moved"], 2),
        new_orig=np.zeros(n),
        dest=cash_out_dest,
        old_dest=np.zeros(n),
        new_dest=np.zeros(n),
        fraud=np.ones(n, dtype=np.int8),
        flagged=np.zeros(n, dtype=np.int8),
        orig=np.full(n, -1, dtype=np.int64),
        mule=mule.copy(),
    )
    if repeat is None:
        parts_rows = [transfer, cash_out]
        keys = [event_key[chunk["victim"]], event_key[chunk["victim"]]]
        subs = [chunk["sub"], chunk["sub"] + 1]
    else:  # a named mule waits before it cashes out (docs/GENERATOR.md)
        repeat.defer(cash_out, step)
        parts_rows = [transfer]
        keys = [event_key[chunk["victim"]]]
        subs = [chunk["sub"]]

    after = np.flatnonzero(rng.random(victims.size) < calibration.aftermath_share)
    if after.size:
        own_type = np.where(rng.random(after.size) < 0.5, TRANSFER, CASH_OUT).astype(np.int8)
        own_amount = np.empty(after.size)
        for tx_type in (TRANSFER, CASH_OUT):
            mine = own_type == tx_type
            own_amount[mine] = _amounts(calibration, tx_type, np.full(int(mine.sum()), step), amounts_rng)
        own_before = np.round(held[after], 2)
        parts_rows.append(
            _Rows(
                step=np.full(after.size, step, dtype=np.int32),
                tx_type=own_type,
                amount=own_amount,
                old_orig=own_before,
                new_orig=np.round(np.maximum(own_before - own_amount, 0.0), 2),
                dest=_covering_pick(balance, active, own_amount, calibration.destination_candidates, rng),
                old_dest=np.zeros(after.size),
                new_dest=np.zeros(after.size),
                fraud=np.ones(after.size, dtype=np.int8),
                flagged=np.zeros(after.size, dtype=np.int8),
                orig=victims[after] if repeat is not None else np.full(after.size, -1, dtype=np.int64),
                mule=np.full(after.size, -1, dtype=np.int64),
            )
        )
        keys.append(event_key[after])
        subs.append(np.full(after.size, 2 * int(chunks.max()), dtype=np.int32))
        held[after] = np.maximum(held[after] - own_amount, 0.0)

    # The victim account keeps only what the fraud left (flagged chunks move nothing).
    drained = np.stack([victims.astype(np.float64), start - held])
    return _Rows.concat(parts_rows), np.concatenate(keys), np.concatenate(subs), drained, event_key


def _victims(balance: np.ndarray, active: int, takeovers: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct accounts with money to steal (PaySim's fraudster gives up on an empty account)."""
    if takeovers == 0:
        return np.empty(0, dtype=np.int64)
    drawn = rng.integers(0, active, size=(takeovers, 8))
    rich = balance[drawn] > 0
    found = rich.any(axis=1)
    victims = drawn[np.arange(takeovers), rich.argmax(axis=1)][found]
    _, first = np.unique(victims, return_index=True)
    return victims[np.sort(first)]


def _settle_destinations(
    rows: _Rows,
    balance: np.ndarray,
    drained: np.ndarray,
    drain_key: np.ndarray,
    row_key: np.ndarray,
) -> None:
    """Fill oldbalanceDest (the balance just before the row) and newbalanceDest (the balance at the end of the
    hour, when PaySim writes its log), then carry the accounts' balances to the next step."""
    to_account = np.flatnonzero(rows.dest >= 0)
    victims = drained[0].astype(np.int64) if drained.size else np.empty(0, dtype=np.int64)
    if to_account.size == 0 and victims.size == 0:
        return
    account = np.concatenate([rows.dest[to_account], victims])
    delta = np.concatenate(
        [
            np.where(rows.tx_type[to_account] == CASH_IN, -rows.amount[to_account], rows.amount[to_account]),
            -drained[1] if drained.size else np.empty(0),
        ]
    )
    # Victims are emptied just before their first chunk, i.e. at the takeover's key.
    when = np.concatenate([row_key[to_account], drain_key - 1e-12 if drained.size else np.empty(0)])
    order = np.lexsort((when, account))
    account, delta = account[order], delta[order]
    running = np.cumsum(delta)
    group_start = np.flatnonzero(np.r_[True, account[1:] != account[:-1]])
    group = np.cumsum(np.r_[True, account[1:] != account[:-1]]) - 1
    before = running - delta - (running[group_start] - delta[group_start])[group]
    start = balance[account]
    old = np.round(np.maximum(start + before, 0.0), 2)
    group_end = np.r_[group_start[1:], account.size] - 1
    total = running[group_end] - running[group_start] + delta[group_start]
    final = np.round(np.maximum(balance[account[group_start]] + total, 0.0), 2)

    is_row = order < to_account.size
    rows.old_dest[to_account[order[is_row]]] = old[is_row]
    rows.new_dest[to_account[order[is_row]]] = final[group[is_row]]
    touched = account[group_start]
    balance[touched] = final


def _empty_rows() -> _Rows:
    f, i8, i64 = np.empty(0), np.empty(0, dtype=np.int8), np.empty(0, dtype=np.int64)
    return _Rows(np.empty(0, dtype=np.int32), i8, f, f, f, i64, f, f, i8, i8, i64, i64)


def _frame(rows: _Rows, rng: np.random.Generator) -> pl.DataFrame:
    """The PaySim frame: names are fresh per row for originators, merchants and mules (PaySim logs copies of
    its clients, each with a new hash code), and stable per account for client destinations. With repeat
    clients an originating account and a mule keep their name too."""
    n = rows.step.size
    accounts = int(max(rows.dest.max(), rows.orig.max())) + 1 if n else 0
    account_names = rng.integers(1, _NAME_LIMIT, max(accounts, 1))
    fresh_dest = rng.integers(1, _NAME_LIMIT, n)
    dest_number = np.where(rows.dest >= 0, account_names[np.maximum(rows.dest, 0)], fresh_dest)
    orig_number = rng.integers(1, _NAME_LIMIT, n)
    orig_number = np.where(rows.orig >= 0, account_names[np.maximum(rows.orig, 0)], orig_number)
    mules = int(rows.mule.max()) + 1 if n else 0
    if mules > 0:  # drawn last: the default month's names stay what they were
        mule_names = rng.integers(1, _NAME_LIMIT, mules)
        is_mule = rows.mule >= 0
        transfer = is_mule & (rows.tx_type == TRANSFER)
        dest_number = np.where(transfer, mule_names[np.maximum(rows.mule, 0)], dest_number)
        orig_number = np.where(is_mule & ~transfer, mule_names[np.maximum(rows.mule, 0)], orig_number)
    frame = pl.DataFrame(
        {
            "step": rows.step.astype(np.int32),
            "code": rows.tx_type.astype(np.int8),
            "amount": rows.amount,
            "orig": orig_number,
            "oldbalanceOrg": rows.old_orig,
            "newbalanceOrig": rows.new_orig,
            "merchant": rows.tx_type == PAYMENT,
            "dest": dest_number,
            "oldbalanceDest": rows.old_dest,
            "newbalanceDest": rows.new_dest,
            "isFraud": rows.fraud.astype(np.int8),
            "isFlaggedFraud": rows.flagged.astype(np.int8),
        }
    )
    return frame.select(
        tx_id=pl.int_range(1, pl.len() + 1).cast(pl.Utf8),
        step=pl.col("step"),
        type=pl.col("code").replace_strict(dict(enumerate(TX_TYPES)), return_dtype=pl.Utf8),
        amount=pl.col("amount"),
        nameOrig=pl.concat_str(pl.lit("C"), pl.col("orig").cast(pl.Utf8)),
        oldbalanceOrg=pl.col("oldbalanceOrg"),
        newbalanceOrig=pl.col("newbalanceOrig"),
        nameDest=pl.concat_str(
            pl.when(pl.col("merchant")).then(pl.lit("M")).otherwise(pl.lit("C")), pl.col("dest").cast(pl.Utf8)
        ),
        oldbalanceDest=pl.col("oldbalanceDest"),
        newbalanceDest=pl.col("newbalanceDest"),
        isFraud=pl.col("isFraud"),
        isFlaggedFraud=pl.col("isFlaggedFraud"),
    ).cast(PAYSIM_SCHEMA)  # type: ignore[arg-type]
