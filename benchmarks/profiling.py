"""Where the bulk scorer's main thread spends a drain: py-spy on a `momoguard serve` worker draining a backlog.

Run: python -m benchmarks.profiling [rows] [seconds] [--account-tables]  (needs `make kafka-up champion`). Writes
the collapsed stacks to reports/profile-bulk.txt (profile-account-tables.txt with the tables) and prints the main
thread's share per frame (self and total), which docs/BENCHMARKS.md summarises.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import uuid

from benchmarks.harness import (
    REPORT,
    bench_topics,
    delete_topics,
    preload,
    scorer_env,
    stop_quietly,
    verdict_count,
    wait_until,
)
from core.settings import Settings
from kafka_ops.topics import account_changelog
from replay.load_test import load_source
from stream_app.process import ScorerProcess


def profile(settings: Settings, rows: int, seconds: float, account_tables: bool = False) -> str:
    """Collapsed py-spy stacks (`--threads --idle`) of one worker draining `rows` transactions (keeping the
    account tables, if asked)."""
    frame = load_source(None, rows, seed=5)
    out = REPORT.parent / ("profile-account-tables.txt" if account_tables else "profile-bulk.txt")
    with bench_topics(settings, "profile") as topics:
        n = preload(settings, topics.transactions, frame)
        port = settings.web_port + 70
        group = f"bench-profile-{uuid.uuid4().hex[:6]}"
        env = scorer_env(settings, topics, group, port)
        if account_tables:
            env["MOMOGUARD_ACCOUNT_TABLES"] = "true"
        scorer = ScorerProcess(f"http://127.0.0.1:{port}", REPORT.parent / "bench-profile.log", env=env)
        try:
            first = min(n // 20, 10_000)
            wait_until(lambda: verdict_count(settings, topics.verdicts) >= first, 180, "draining starts", scorer)
            py_spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
            subprocess.run(
                [py_spy, "record", "--pid", str(scorer.pid), "--threads", "--idle", "--rate", "200"]
                + ["--duration", str(int(seconds)), "--format", "raw", "--output", str(out), "--nonblocking"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if n - verdict_count(settings, topics.verdicts) <= 0:
                print("warning: the drain ended inside the profile; idle samples included")  # noqa: T201
        finally:
            stop_quietly(scorer)
            if account_tables:
                delete_topics(settings, [account_changelog(settings.model_copy(update={"consumer_group": group}))])
    return out.read_text()


def summarise(collapsed: str, top: int = 25) -> str:
    """Per thread: share of samples; for the busiest thread, frames by self and by total share."""
    threads: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    total_time: collections.Counter[str] = collections.Counter()
    stacks = []
    for line in collapsed.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        threads[frames[0]] += int(samples)
        stacks.append((frames, int(samples)))
    main = threads.most_common(1)[0][0] if threads else ""
    main_total = threads[main] or 1
    for frames, count in stacks:
        if frames[0] != main:
            continue
        self_time[frames[-1]] += count
        for frame in set(frames[1:]):
            total_time[frame] += count
    lines = ["threads (share of all samples):"]
    everything = sum(threads.values()) or 1
    lines += [f"  {100 * c / everything:5.1f} %  {t}" for t, c in threads.most_common()]
    lines.append(f"busiest thread {main!r}, by self time:")
    lines += [f"  {100 * c / main_total:5.1f} %  {f}" for f, c in self_time.most_common(top)]
    lines.append("by total time:")
    lines += [f"  {100 * c / main_total:5.1f} %  {f}" for f, c in total_time.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=400_000, help="backlog to drain")
    parser.add_argument("seconds", nargs="?", type=float, default=8.0, help="how long py-spy samples")
    parser.add_argument("--account-tables", action="store_true", help="the worker keeps the account tables")
    args = parser.parse_args(argv)
    print(summarise(profile(Settings(), args.rows, args.seconds, args.account_tables)))  # noqa: T201 - the report


if __name__ == "__main__":
    main()
