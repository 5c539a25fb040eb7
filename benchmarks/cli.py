"""`momoguard bench`: every figure of the benchmark in one run, into reports/bench.json and docs/BENCHMARKS.md."""

from __future__ import annotations

import json
import os

import typer


def bench(
    rows: int = typer.Option(200_000, min=1000, help="Backlog each scorer drains for the throughput figures."),
    latency_seconds: float = typer.Option(20.0, min=2, help="Seconds of steady replay at each offered rate."),
    skip_generator: bool = typer.Option(False, help="Leave out the generator's Kaggle-size timing."),
) -> None:
    """Benchmark: Faust scorer vs a plain confluent-kafka loop, latency at 1k/5k tx/s, model, generator."""
    from benchmarks import bench as benchmark
    from core.settings import Settings

    result = benchmark.run_bench(Settings(), rows, latency_seconds, skip_generator)
    benchmark.record(result, "make bench" if os.environ.get("MAKELEVEL") else "momoguard bench")
    print(json.dumps(result.to_json(), indent=2))
