"""Duplicate verdicts after a graceful takeover and after a SIGKILL: the bulk path's delivery figures for `make bench`.

Each run uses fresh topics and real `momoguard serve` workers, signals one mid-stream, lets the group finish,
then reads every verdict back and counts the tx_ids answered twice (and any missing). The takeover runs with
traffic flowing at a steady rate (SIGTERM one of two workers, the other takes its partitions: expect 0); the
SIGKILL hits a worker draining a backlog flat out, the worst case (expect at most MOMOGUARD_IN_FLIGHT_WINDOW).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl
from confluent_kafka import Message, Producer

from benchmarks.harness import bench_topics, preload, read_topic, scorer_env, stop_quietly, verdict_count, wait_until
from core.errors import MomoGuardError
from core.settings import Settings
from kafka_ops.clients import librdkafka_config
from stream_app.process import ScorerProcess, get_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DuplicateRun:
    """What one signalled drain left in `verdicts`."""

    event: str  # "sigterm, one of two workers" or "sigkill, then restart"
    sent: int
    verdicts: int
    missing: int
    duplicates: int
    verdicts_at_signal: int
    in_flight_window: int


def graceful_takeover(settings: Settings, frame: pl.DataFrame, log_dir: Path, rate: float = 10_000) -> DuplicateRun:
    """Two workers score a steady stream; the second gets SIGTERM a quarter of the way in; the first goes on."""
    return _signalled_run(settings, frame, log_dir, "takeover", workers=2, sig=signal.SIGTERM, rate=rate)


def crash_and_restart(settings: Settings, frame: pl.DataFrame, log_dir: Path) -> DuplicateRun:
    """One worker drains a backlog, is SIGKILLed a quarter of the way in, and a new one finishes it."""
    return _signalled_run(settings, frame, log_dir, "sigkill", workers=1, sig=signal.SIGKILL, rate=None)


def _signalled_run(
    settings: Settings,
    frame: pl.DataFrame,
    log_dir: Path,
    name: str,
    workers: int,
    sig: signal.Signals,
    rate: float | None,
) -> DuplicateRun:
    with bench_topics(settings, name) as topics:
        n = frame.height
        if rate is None:
            preload(settings, topics.transactions, frame)
        group = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        port = settings.web_port + 60
        env = scorer_env(settings, topics, group, port)
        started: list[ScorerProcess] = []
        sender: threading.Thread | None = None

        def start(index: int) -> ScorerProcess:
            web, log_file = f"http://127.0.0.1:{port + index}", log_dir / f"bench-{name}.log"
            scorer = ScorerProcess(web, log_file, env=env, args=("--worker-index", str(index)))
            started.append(scorer)
            return scorer

        try:
            for index in range(workers):
                start(index)
            if rate is not None:
                webs = [f"http://127.0.0.1:{port + i}" for i in range(workers)]
                wait_until(lambda: all(_holds_partitions(web) for web in webs), 180, f"{name}: workers up")
                sender = threading.Thread(target=_send_paced, args=(settings, topics.transactions, frame, rate))
                sender.start()
            wait_until(lambda: verdict_count(settings, topics.verdicts) >= n // 4, 300, f"{name}: under way")
            victim = started[-1]
            victim.proc.send_signal(sig)
            at_signal = verdict_count(settings, topics.verdicts)
            victim.proc.wait(60)
            if sig == signal.SIGKILL:
                start(0)
            if sender is not None:
                sender.join()
            answered = f"{name}: every transaction answered"
            wait_until(lambda: verdict_count(settings, topics.verdicts) >= n, 240, answered)
            time.sleep(3.0)  # late duplicates, if any, land now
        finally:
            for scorer in started:
                stop_quietly(scorer)
        ids = read_topic(settings, topics.verdicts, verdict_count(settings, topics.verdicts), _tx_id)
    seen = Counter(ids)
    sent_ids = {f"bench-{tx_id}" for tx_id in frame["tx_id"].to_list()}  # as `encode` names them
    run = DuplicateRun(
        event="sigterm, one of two workers" if sig == signal.SIGTERM else "sigkill, then restart",
        sent=n,
        verdicts=len(ids),
        missing=len(sent_ids - set(seen)),
        duplicates=sum(c - 1 for c in seen.values()),
        verdicts_at_signal=at_signal,
        in_flight_window=settings.in_flight_window,
    )
    log.info("bench: %s", run)
    return run


def _holds_partitions(web: str) -> bool:
    """Whether a worker holds partitions (its /ready lists them, 503 or not)."""
    try:
        return bool(get_json(f"{web}/ready").get("partitions"))
    except (OSError, ValueError):
        return False


def _send_paced(settings: Settings, topic: str, frame: pl.DataFrame, rate: float) -> None:
    from replay.replayer import encode, produce_waiting, stamped

    producer = Producer({**librdkafka_config(settings), "linger.ms": 5, "compression.type": "lz4", "log_level": 0})
    started = time.monotonic()
    for i, (_, key, body) in enumerate(encode(frame, "bench")):
        ahead = started + i / rate - time.monotonic()
        if ahead > 0.005:
            time.sleep(ahead)
        produce_waiting(producer, topic, stamped(body, time.time()), key)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(60):
        raise MomoGuardError("the takeover traffic was not acknowledged by the broker")


def _tx_id(message: Message) -> str:
    return str(orjson.loads(message.value() or b"{}").get("tx_id"))
