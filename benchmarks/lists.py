"""How soon a list entry applies: from its write (and from `momoguard lists add`) to every worker of a group holding it.

Run: python -m benchmarks.lists [--rounds N] [--cli-rounds N]  (needs `make kafka-up` and a champion); prints JSON and
writes reports/bench-lists.json. Two workers of one group on fresh topics, idle; "held" is read from each worker's
/ready (`lists.entries`), polled every 5 ms, so the figures include up to one poll.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.harness import REPORT, bench_topics, scorer_env, stop_quietly, wait_until
from core.errors import MomoGuardError
from core.settings import Settings
from kafka_ops.clients import librdkafka_config
from kafka_ops.topics import LISTS_CONFIG
from schemas.lists import ListEntry
from stream_app.list_topic import write_entry, write_removal
from stream_app.process import ScorerProcess, get_json

WORKERS = 2


def held_everywhere(webs: list[str], entries: int) -> Callable[[], bool]:
    def check() -> bool:
        return all(int(get_json(f"{web}/ready")["lists"]["entries"]) == entries for web in webs)

    return check


def settle(check: Callable[[], bool], timeout: float = 30.0) -> float:
    """perf_counter() once `check` holds (polled every 5 ms)."""
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise MomoGuardError("a list change did not reach every worker within 30 s")
        time.sleep(0.005)
    return time.perf_counter()


def summary(values_ms: list[float]) -> dict[str, float | int]:
    ordered = sorted(values_ms)
    return {"n": len(ordered), "median": ordered[len(ordered) // 2], "max": ordered[-1], "min": ordered[0]}


def measure(settings: Settings, rounds: int, cli_rounds: int) -> dict[str, object]:
    lists_topic = f"bench-lists-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({**librdkafka_config(settings), "log_level": 0})
    admin.create_topics([NewTopic(lists_topic, 1, 1, config=dict(LISTS_CONFIG))])[lists_topic].result(30)
    with bench_topics(settings, "lists") as topics:
        port = settings.web_port + 52
        env = {**scorer_env(settings, topics, f"bench-lists-{uuid.uuid4().hex[:6]}", port)}
        env["MOMOGUARD_TOPIC_LISTS"] = lists_topic
        own = settings.model_copy(update={"topic_lists": lists_topic})
        log_dir = REPORT.parent
        workers = [
            ScorerProcess(f"http://127.0.0.1:{port + i}", log_dir / f"bench-lists-{i}.log", env=env,
                          args=["--worker-index", str(i)])
            for i in range(WORKERS)
        ]  # fmt: skip
        webs = [w.web for w in workers]
        try:
            for worker in workers:
                worker.wait_ready(180)
            wait_until(lambda: all(get_json(f"{w}/ready").get("partitions") for w in webs), 120, "both assigned")
            after_ack: list[float] = []
            for i in range(rounds):
                account = f"C9{i:08d}"
                entry = ListEntry(
                    account=account, action="block", reason="bench", added_by="bench", added_at=datetime.now(UTC)
                )
                write_entry(own, entry)
                acked = time.perf_counter()
                after_ack.append((settle(held_everywhere(webs, 1)) - acked) * 1000)
                write_removal(own, account)
                settle(held_everywhere(webs, 0))
            from_cli: list[float] = []
            for i in range(cli_rounds):
                account = f"C8{i:08d}"
                started = time.perf_counter()
                add = [sys.executable, "-m", "momoguard", "lists", "add", "--block", "--account", account]
                done = subprocess.run(
                    [*add, "--reason", "bench"], env={**os.environ, **env}, capture_output=True, text=True, check=False
                )
                if done.returncode:
                    raise MomoGuardError(f"lists add failed: {done.stderr.strip().splitlines()[-1:]}")
                from_cli.append((settle(held_everywhere(webs, 1)) - started) * 1000)
                write_removal(own, account)
                settle(held_everywhere(webs, 0))
        finally:
            for worker in workers:
                stop_quietly(worker)
            admin.delete_topics([lists_topic])
    return {
        "workers": WORKERS,
        "write_ack_to_every_worker_ms": summary(after_ack),
        "lists_add_start_to_every_worker_ms": summary(from_cli) if from_cli else None,
        "load_average": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="entries written directly, each timed")
    parser.add_argument("--cli-rounds", type=int, default=5, help="`momoguard lists add` runs, each timed")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.cli_rounds < 0:
        parser.error("--rounds must be >= 1 and --cli-rounds >= 0")
    result = measure(Settings(), args.rounds, args.cli_rounds)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    (REPORT.parent / "bench-lists.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))  # noqa: T201 - the report


if __name__ == "__main__":
    main()
