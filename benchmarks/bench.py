"""`momoguard bench`: the Faust scorer against a plain confluent-kafka loop, latency, duplicates, model, generator.

One command, one run, the same data and machine for every figure. It writes reports/bench.json and adds a
dated row to docs/BENCHMARKS.md. Each part runs its scorer as a separate process, as an operator would.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.duplicates import DuplicateRun, crash_and_restart, graceful_takeover
from benchmarks.harness import (
    REPORT,
    BenchTopics,
    DelayMs,
    HistogramReading,
    bench_topics,
    delete_topics,
    preload,
    read_histogram,
    scorer_env,
    stop_quietly,
    sustained_tps,
    verdict_count,
    verdict_timestamps,
    wait_until,
)
from benchmarks.shadow import ShadowCost, shadow_cost
from core.errors import MomoGuardError
from core.machine import describe_machine
from core.settings import PROJECT_ROOT, Settings
from kafka_ops.topics import account_changelog
from stream_app.process import ScorerProcess

log = logging.getLogger(__name__)

BENCHMARKS_MD = PROJECT_ROOT / "docs" / "BENCHMARKS.md"


CREDIT_DELAY = "momoguard_credit_delay_seconds"


@dataclass(frozen=True)
class Drain:
    """One scorer draining a preloaded backlog."""

    tps: float
    credit_delay_ms: DelayMs | None  # a worker keeping the account tables: production to application of credits


def drain(
    settings: Settings,
    frame: pl.DataFrame,
    command: list[str],
    name: str,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
) -> Drain:
    """Preload the rows, start the scorer `command` (its environment plus `extra_env`), time how fast it answers
    them all; for a worker keeping the account tables, how stale its credits were meanwhile."""
    with bench_topics(settings, name) as topics:
        n = preload(settings, topics.transactions, frame)
        with bench_scorer(settings, topics, name, settings.web_port + 50, log_dir, command, extra_env) as scorer:
            wait_until(lambda: verdict_count(settings, topics.verdicts) >= n, 900, name, scorer)
            tables = keeps_tables(extra_env)
            credit_delay = settled_histogram(scorer.web, CREDIT_DELAY).summary_ms() if tables else None
        return Drain(sustained_tps(verdict_timestamps(settings, topics.verdicts, n)), credit_delay)


def keeps_tables(extra_env: dict[str, str] | None) -> bool:
    return "MOMOGUARD_ACCOUNT_TABLES" in (extra_env or {})


@contextmanager
def bench_scorer(
    settings: Settings,
    topics: BenchTopics,
    name: str,
    port: int,
    log_dir: Path,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ScorerProcess]:
    """A scorer on the part's topics, its own consumer group and `port`; stopped afterwards, and the changelog of
    its account tables (if it kept them) deleted with the part's topics."""
    group = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    env = {**scorer_env(settings, topics, group, port), **(extra_env or {})}
    scorer = ScorerProcess(f"http://127.0.0.1:{port}", log_dir / f"bench-{name}.log", env=env, command=command)
    try:
        yield scorer
    finally:
        stop_quietly(scorer)
        if keeps_tables(extra_env):
            delete_topics(settings, [account_changelog(settings.model_copy(update={"consumer_group": group}))])


def settled_histogram(web: str, name: str, quiet_s: float = 1.0, timeout_s: float = 60.0) -> HistogramReading:
    """The histogram once its count stops moving for `quiet_s` (the last credits of a drain are applied after its
    last verdict)."""
    deadline = time.monotonic() + timeout_s
    reading = read_histogram(web, name)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        again = read_histogram(web, name)
        if again.count == reading.count:
            return again
        reading = again
    return reading


@dataclass(frozen=True)
class RateLatency:
    """Publish-to-verdict latency of the scorer at one steady offered rate."""

    p50: float
    p99: float
    achieved_rate_tps: float | None
    missing: int
    credit_delay_ms: DelayMs | None = None  # a worker keeping the account tables: how stale its credits were


@dataclass(frozen=True)
class BenchResult:
    """One run of `make bench`: every figure, on one machine, from the same data."""

    date: str
    machine: str
    load_average_before: float
    load_average_after: float
    model_version: str
    rows: int
    faust_tps: float
    faust_tps_2_workers: float
    baseline_tps: float
    faust_tps_account_tables: float  # one worker keeping the account tables (docs/ACCOUNT_STATE.md)
    latency_ms: dict[str, RateLatency]  # by offered rate, "1000" and "5000"
    latency_ms_cold_broker: RateLatency  # the unmeasured warm-up of (c): 1,000 tx/s on the broker as it came up
    latency_ms_account_tables: dict[str, RateLatency]  # the same with the tables, and the credits' delay
    credit_delay_ms_drain: DelayMs | None  # the credits' delay while one worker with the tables drains (b')
    duplicates: dict[str, DuplicateRun]  # "graceful_takeover", "sigkill"
    model_us_per_row: dict[str, float]  # "batch_1", "batch_1000"
    generator_seconds_kaggle_size: float | None
    shadow: ShadowCost
    settings: dict[str, int]

    @property
    def ratio(self) -> float | None:
        return self.faust_tps / self.baseline_tps if self.baseline_tps else None

    @property
    def ratio_2_workers(self) -> float | None:
        return self.faust_tps_2_workers / self.baseline_tps if self.baseline_tps else None

    @property
    def ratio_account_tables(self) -> float | None:
        return self.faust_tps_account_tables / self.baseline_tps if self.baseline_tps else None

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "ratio_2_workers": self.ratio_2_workers,
            "ratio_account_tables": self.ratio_account_tables,
            "shadow_ratio": self.shadow.ratio,
        }


# Seconds of each steady stream sent before its latency is measured (docs/BENCHMARKS.md, "latency").
WARM_UP_S = 2.0
# Seconds of traffic at 1,000 tx/s a freshly started broker gets before anything is measured: its JVM is still
# compiling the produce/fetch path, and for the first ~5 s of traffic a verdict can take 0.2-0.9 s whoever the
# client is (docs/BENCHMARKS.md, "The 1,000 tx/s tail was the broker's warm-up").
BROKER_WARM_UP_S = 10.0


def latency_at(
    settings: Settings,
    frame: pl.DataFrame,
    rates: list[int],
    seconds: float,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    name: str = "latency",
) -> dict[str, RateLatency]:
    """p50/p99 of the Faust scorer at each steady offered rate (replayer on the same machine); with the account
    tables (`extra_env`), the credits' delay at each rate too."""
    from replay.replayer import Pace, replay
    from replay.report import build_report

    out: dict[str, RateLatency] = {}
    tables = keeps_tables(extra_env)
    with (
        bench_topics(settings, name) as topics,
        bench_scorer(settings, topics, name, settings.web_port + 51, log_dir, extra_env=extra_env) as scorer,
    ):
        scorer.wait_ready(180)
        local = settings.model_copy(
            update={
                "topic_transactions": topics.transactions,
                "topic_verdicts": topics.verdicts,
            }
        )
        offset = 0
        for rate in rates:
            # One steady stream per rate: WARM_UP_S of it first (fresh connections of the replayer, the
            # scorer's first batches at this rate), then the measured `seconds`.
            warm = int(rate * WARM_UP_S)
            rows = frame.slice(offset, warm + int(rate * seconds))
            offset += rows.height
            before = read_histogram(scorer.web, CREDIT_DELAY) if tables else None
            result = replay(local, rows, Pace(rate=float(rate)), wait_s=60)
            credit_delay = None
            if before is not None:
                credit_delay = settled_histogram(scorer.web, CREDIT_DELAY).since(before).summary_ms()
            sent = result.sent[warm:]
            measured = {s.tx_id for s in sent}
            received = [r for r in result.received if r.tx_id in measured]
            span = sent[-1].sent_at - sent[0].sent_at if len(sent) > 1 else result.send_seconds
            report = build_report(sent, received, offered_rate_tps=rate, send_seconds=span)
            latency = report.latency_ms
            answered = {r.tx_id for r in result.received}
            missing = sum(s.tx_id not in answered for s in result.sent)  # the warm-up's too
            out[str(rate)] = RateLatency(latency.p50, latency.p99, report.achieved_rate_tps, missing, credit_delay)
    return out


def model_alone(settings: Settings, frame: pl.DataFrame) -> dict[str, float]:
    """Microseconds per row of the champion's prediction alone (features prebuilt), one thread."""
    from registry import load_champion
    from schemas.features import build_features

    model = load_champion(settings)
    x = build_features(frame.head(50_000), model.feature_set)
    booster = model.booster
    out: dict[str, float] = {}
    for label, size, calls in (("batch_1", 1, 3000), ("batch_1000", 1000, 60)):
        started = time.perf_counter()
        for i in range(calls):
            start = (i * size) % (x.shape[0] - size)
            booster.predict(x[start : start + size], num_threads=1)
        out[label] = (time.perf_counter() - started) / (calls * size) * 1e6
    return out


def generator_seconds(log_dir: Path) -> float:
    """Kaggle-size generation time from the generator's own benchmark (one core)."""
    report = log_dir / "bench-generate.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.generator", "--json", str(report)],
        cwd=PROJECT_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    figures = json.loads(report.read_text())
    return float(figures["generate_s"])


def run_bench(settings: Settings, rows: int, latency_seconds: float, skip_generator: bool) -> BenchResult:
    from registry import champion_version
    from replay.load_test import load_source

    version = champion_version(settings)
    if version is None:
        raise MomoGuardError("no champion model to benchmark: run `make train` first")
    log_dir = REPORT.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    frame = load_source(None, rows + int(6000 * (latency_seconds + WARM_UP_S)), seed=7)
    backlog = frame.head(rows)
    # The latency runs come first, on a broker with nothing else to do. After the drains the broker is still
    # deleting their topics and compacting the tables' changelog: measured after them (12-03), the same code's p99
    # at 1,000 tx/s was 65 ms where hand runs minutes later on an idle broker gave 30-33 ms (docs/BENCHMARKS.md).
    # Before them the broker gets traffic of its own (c0): `make bench` starts it, and the first seconds of traffic
    # a fresh broker serves are slow for any client (12-04: p99 835 ms in the first leg, 12.6 ms in the next).
    log.info("bench: (c0) %.0f s at 1,000 tx/s to warm the broker up (reported, not a target)", BROKER_WARM_UP_S)
    cold = latency_at(settings, frame.slice(rows), [1000], BROKER_WARM_UP_S, log_dir, name="broker-warm-up")
    log.info("bench: (c) latency at steady rates")
    latency = latency_at(settings, frame.slice(rows), [1000, 5000], latency_seconds, log_dir)
    tables = {"MOMOGUARD_ACCOUNT_TABLES": "true"}
    log.info("bench: (c') latency and the credits' delay at steady rates, keeping the account tables")
    latency_tables = latency_at(
        settings, frame.slice(rows), [1000, 5000], latency_seconds, log_dir, tables, "latency-tables"
    )
    log.info("bench: (a) Faust scorer (bulk path) draining %d transactions", rows)
    faust_tps = drain(settings, backlog, [sys.executable, "-m", "momoguard", "serve"], "faust", log_dir).tps
    log.info("bench: (a') two Faust workers draining %d transactions", rows)
    serve_two = [sys.executable, "-m", "momoguard", "serve", "--workers", "2"]
    faust_two_tps = drain(settings, backlog, serve_two, "faust-2", log_dir).tps
    log.info("bench: (b) baseline loop draining %d transactions", rows)
    baseline_tps = drain(settings, backlog, [sys.executable, "-m", "benchmarks.baseline"], "baseline", log_dir).tps
    log.info("bench: (b') one Faust worker keeping the account tables, draining %d transactions", rows)
    serve = [sys.executable, "-m", "momoguard", "serve"]
    tables_drain = drain(settings, backlog, serve, "faust-tables", log_dir, tables)
    log.info("bench: (d) duplicates after a graceful takeover and after a SIGKILL")
    short = backlog.head(min(rows, 100_000))
    duplicates = {
        "graceful_takeover": graceful_takeover(settings, short, log_dir),
        "sigkill": crash_and_restart(settings, short, log_dir),
    }
    log.info("bench: (e) the cost of shadow scoring: one worker without and with a challenger")
    shadow = shadow_cost(settings, backlog, lambda own, rows_, name: drain(own, rows_, serve, name, log_dir).tps)
    log.info("bench: (f) model alone")
    model = model_alone(settings, frame)
    generator = None if skip_generator else generator_seconds(log_dir)
    return BenchResult(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=describe_machine(),
        load_average_before=round(load_before[0], 2),
        load_average_after=round(os.getloadavg()[0], 2),
        model_version=version,
        rows=rows,
        faust_tps=faust_tps,
        faust_tps_2_workers=faust_two_tps,
        baseline_tps=baseline_tps,
        faust_tps_account_tables=tables_drain.tps,
        latency_ms=latency,
        latency_ms_cold_broker=cold["1000"],
        latency_ms_account_tables=latency_tables,
        credit_delay_ms_drain=tables_drain.credit_delay_ms,
        duplicates=duplicates,
        model_us_per_row=model,
        generator_seconds_kaggle_size=generator,
        shadow=shadow,
        settings={
            "max_batch": settings.max_batch,
            "max_fetch_bytes": settings.max_fetch_bytes,
            "in_flight_window": settings.in_flight_window,
        },
    )


def record(result: BenchResult, command: str) -> None:
    """Write reports/bench.json and add a dated row to docs/BENCHMARKS.md."""
    REPORT.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    lat, dup, model = result.latency_ms, result.duplicates, result.model_us_per_row
    row = (
        f"| {result.date[:16]} | {result.faust_tps:,.0f} | {result.faust_tps_2_workers:,.0f} | "
        f"{result.baseline_tps:,.0f} | {_maybe(result.ratio, 2)} / {_maybe(result.ratio_2_workers, 2)} | "
        f"{lat['1000'].p50:.1f} / {lat['1000'].p99:.1f} | {lat['5000'].p50:.1f} / {lat['5000'].p99:.1f} | "
        f"{dup['graceful_takeover'].duplicates} | {dup['sigkill'].duplicates} (window "
        f"{dup['sigkill'].in_flight_window:,}) | {result.load_average_before:.1f} / {result.load_average_after:.1f} | "
        f"{model['batch_1']:.1f} / {model['batch_1000']:.2f} | "
        f"{_maybe(result.generator_seconds_kaggle_size)} | `{command}` |"
    )
    shadow = result.shadow
    shadow_row = (
        f"| {result.date[:16]} | {result.rows:,} | {shadow.champion_only_tps:,.0f} | {shadow.with_challenger_tps:,.0f} "
        f"| {_maybe(shadow.ratio, 2)} | {result.load_average_before:.1f} / {result.load_average_after:.1f} "
        f"| `{command}` |"
    )
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else ""
    marker = "<!-- bulk bench rows -->"
    if marker not in text:
        text += (
            "\n## Scorer benchmark, bulk path (`make bench`)\n\n"
            f"Machine: {result.machine}. Broker, scorer and load generator share the machine.\n\n"
            "| date (UTC) | Faust tx/s | 2 workers tx/s | baseline tx/s | ratio (1 / 2 workers) | p50/p99 ms @1k tx/s "
            "| p50/p99 ms @5k tx/s | duplicates, graceful takeover | duplicates, SIGKILL | load avg (before / after) "
            "| model µs/row (batch 1 / 1000) | generator s (Kaggle size) | command |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" + marker + "\n"
        )
    shadow_marker = "<!-- shadow bench rows -->"
    if shadow_marker not in text:
        text += (
            "\n## The cost of shadow scoring (`make bench`, part e)\n\n"
            "One Faust worker drains the same backlog twice against a registry of the bench's own: the champion "
            "alone, then with the same booster as `challenger` (every batch scored twice, the challenger's "
            "verdicts written to the shadow topic). Both runs write the scored-transaction records. Ratio: with "
            "/ without.\n\n"
            "| date (UTC) | rows | champion only tx/s | with challenger tx/s | ratio | load avg (before / after) "
            "| command |\n|---|---|---|---|---|---|---|\n" + shadow_marker + "\n"
        )
    text = text.replace(shadow_marker, shadow_row + "\n" + shadow_marker)
    tables_marker = "<!-- account tables bench rows -->"
    if tables_marker not in text:
        text += (
            "\n## The cost of the account tables (`make bench`, part b')\n\n"
            "One Faust worker drains the same backlog as (a) keeping the account tables (RocksDB, the credits "
            "topic, the changelog; docs/ACCOUNT_STATE.md), against the plain loop (b) of the same run. Target: "
            ">= 0.6x the plain loop.\n\n"
            "| date (UTC) | rows | without tables tx/s | with tables tx/s | with / without | with / plain loop "
            "| load avg (before / after) | command |\n|---|---|---|---|---|---|---|---|\n" + tables_marker + "\n"
        )
    with_without = result.faust_tps_account_tables / result.faust_tps if result.faust_tps else None
    tables_row = (
        f"| {result.date[:16]} | {result.rows:,} | {result.faust_tps:,.0f} | {result.faust_tps_account_tables:,.0f} "
        f"| {_maybe(with_without, 2)} | {_maybe(result.ratio_account_tables, 2)} "
        f"| {result.load_average_before:.1f} / {result.load_average_after:.1f} | `{command}` |"
    )
    text = text.replace(tables_marker, tables_row + "\n" + tables_marker)
    staleness_marker = "<!-- credit staleness bench rows -->"
    if staleness_marker not in text:
        text += (
            "\n## How stale the credits are (`make bench`, parts b' and c')\n\n"
            "`momoguard_credit_delay_seconds` of a worker keeping the account tables: from a credit's production "
            "(its transaction scored) to its application on the receiving account's partition, read from the "
            "worker's /metrics (mean exact; p50/p99 interpolated in the histogram's buckets, as Prometheus does). "
            "Under load: while it drains the backlog of (b'). At steady rates: the same worker set-up as (c), "
            "with the verdicts' own publish-to-verdict p50/p99 beside it.\n\n"
            "| date (UTC) | drain: credits, mean / p50 / p99 ms | 1k tx/s: verdicts p50 / p99 ms | 1k tx/s: "
            "credits mean / p50 / p99 ms | 5k tx/s: verdicts p50 / p99 ms | 5k tx/s: credits mean / p50 / p99 ms "
            "| load avg (before / after) | command |\n|---|---|---|---|---|---|---|---|\n" + staleness_marker + "\n"
        )
    lat_tables = result.latency_ms_account_tables
    staleness_row = (
        f"| {result.date[:16]} | {_delay(result.credit_delay_ms_drain)} "
        f"| {lat_tables['1000'].p50:.1f} / {lat_tables['1000'].p99:.1f} | {_delay(lat_tables['1000'].credit_delay_ms)} "
        f"| {lat_tables['5000'].p50:.1f} / {lat_tables['5000'].p99:.1f} | {_delay(lat_tables['5000'].credit_delay_ms)} "
        f"| {result.load_average_before:.1f} / {result.load_average_after:.1f} | `{command}` |"
    )
    text = text.replace(staleness_marker, staleness_row + "\n" + staleness_marker)
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS_MD.write_text(text.replace(marker, row + "\n" + marker))


def _delay(delay: DelayMs | None) -> str:
    if delay is None:
        return "no credits"
    beyond = f" ({delay.beyond_last_bucket:,} beyond the last bucket)" if delay.beyond_last_bucket else ""
    return f"{delay.mean:.1f} / {delay.p50:.1f} / {delay.p99:.1f}{beyond}"


def _maybe(value: float | None, digits: int = 1) -> str:
    return "skipped" if value is None else f"{value:.{digits}f}"
