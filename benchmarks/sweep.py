"""Choose the scorer's micro-batch defaults by measurement: throughput and latency per (max_batch, max_wait).

Run: python -m benchmarks.sweep  (needs `make kafka-up champion`); prints a Markdown table and writes
reports/bench-sweep.json. Each configuration runs fresh workers on fresh topics, like `momoguard bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from benchmarks.bench import REPORT, drain_rate, latency_at
from core.settings import Settings
from replay.load_test import load_source

CONFIGS = ((200, 0.002), (1000, 0.005), (1000, 0.02), (5000, 0.05))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=60_000, help="transactions drained per configuration")
    rows = parser.parse_args(argv).rows
    if rows < 1:
        parser.error(f"rows must be >= 1, got {rows}")
    frame = load_source(None, rows + 20_000, seed=11)
    results = []
    for max_batch, max_wait in CONFIGS:
        os.environ["MOMOGUARD_MAX_BATCH"] = str(max_batch)
        os.environ["MOMOGUARD_MAX_WAIT_S"] = str(max_wait)
        settings = Settings()
        serve = [sys.executable, "-m", "momoguard", "serve"]
        tps = drain_rate(settings, frame.head(rows), serve, f"sweep-{max_batch}", REPORT.parent)
        latency = latency_at(settings, frame.slice(rows), [1000], 15.0, REPORT.parent)["1000"]
        results.append(
            {
                "max_batch": max_batch,
                "max_wait_s": max_wait,
                "drain_tps": tps,
                "p50_ms_at_1000": latency["p50"],
                "p99_ms_at_1000": latency["p99"],
            }
        )
    (REPORT.parent / "bench-sweep.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| max_batch | max_wait s | drain tx/s | p50 ms @1k | p99 ms @1k |")  # noqa: T201 - the report
    print("|---|---|---|---|---|")  # noqa: T201
    for r in results:
        print(  # noqa: T201
            f"| {r['max_batch']} | {r['max_wait_s']} | {r['drain_tps']:,.0f} | {r['p50_ms_at_1000']:.1f} | "
            f"{r['p99_ms_at_1000']:.1f} |"
        )


if __name__ == "__main__":
    main()
