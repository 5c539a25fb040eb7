"""Choose the bulk path's defaults by measurement: throughput and latency per (max_batch, in-flight window).

A fetch is scored as one batch, without waiting to fill it, so `max_batch` (records per fetch) and the
in-flight window (read but not yet committed; what a crash redoes) are the knobs left.

Run: python -m benchmarks.sweep  (needs `make kafka-up champion`); prints a Markdown table and writes
reports/bench-sweep.json. Each configuration runs fresh workers on fresh topics, like `momoguard bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from benchmarks.bench import drain, latency_at
from benchmarks.harness import REPORT
from core.settings import Settings
from replay.load_test import load_source

CONFIGS = ((500, 20_000), (1000, 20_000), (2000, 20_000), (1000, 2000), (1000, 5000), (1000, 50_000))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=60_000, help="transactions drained per configuration")
    rows = parser.parse_args(argv).rows
    if rows < 1:
        parser.error(f"rows must be >= 1, got {rows}")
    frame = load_source(None, rows + 20_000, seed=11)
    results = []
    load_before = os.getloadavg()[0]
    for max_batch, window in CONFIGS:
        os.environ["MOMOGUARD_MAX_BATCH"] = str(max_batch)
        os.environ["MOMOGUARD_IN_FLIGHT_WINDOW"] = str(window)
        settings = Settings()
        serve = [sys.executable, "-m", "momoguard", "serve"]
        tps = drain(settings, frame.head(rows), serve, f"sweep-{max_batch}", REPORT.parent).tps
        latency = latency_at(settings, frame.slice(rows), [1000], 15.0, REPORT.parent)["1000"]
        results.append(
            {
                "max_batch": max_batch,
                "in_flight_window": window,
                "drain_tps": tps,
                "p50_ms_at_1000": latency.p50,
                "p99_ms_at_1000": latency.p99,
            }
        )
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    (REPORT.parent / "bench-sweep.json").write_text(json.dumps({"load": load, "results": results}, indent=2) + "\n")
    print(load)  # noqa: T201 - the report
    print("| max_batch | in-flight window | drain tx/s | p50 ms @1k | p99 ms @1k |")  # noqa: T201
    print("|---|---|---|---|---|")  # noqa: T201
    for r in results:
        print(  # noqa: T201
            f"| {r['max_batch']} | {r['in_flight_window']:,} | {r['drain_tps']:,.0f} | {r['p50_ms_at_1000']:.1f} | "
            f"{r['p99_ms_at_1000']:.1f} |"
        )


if __name__ == "__main__":
    main()
