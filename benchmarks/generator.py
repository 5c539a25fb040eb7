"""Benchmark: generate a Kaggle-size PaySim month on one core, write it as CSV, record seconds and peak memory.

Run: python -m benchmarks.generator [--steps 743] [--scale 1.0] [--seed 0] [--json reports/bench-generate.json]
"""

from __future__ import annotations

import os

# One core: polars and numpy read these when they load, so they are set before the imports below.
for _variable in ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from core.machine import describe_machine  # noqa: E402
from core.settings import PROJECT_ROOT  # noqa: E402
from paysim.generator import generate, write_paysim  # noqa: E402

DEFAULT_JSON = PROJECT_ROOT / "reports" / "bench-generate.json"
_SHOWN = ("date", "machine", "rows", "generate_s", "write_csv_s", "total_s", "peak_rss_mb", "csv_mb")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: run the benchmark, print the figures, write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=743)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    result = run(args.steps, args.scale, args.seed)
    result["command"] = " ".join(["python -m benchmarks.generator", *(argv if argv is not None else sys.argv[1:])])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    figures = "\n".join(f"{key}: {result[key]}" for key in _SHOWN)
    print(f"{figures}\nwritten to {args.json}")  # noqa: T201 - the figures are this command's output


def run(steps: int, scale: float, seed: int) -> dict[str, Any]:
    """Generate and write one month pinned to one CPU; the figures and where they were measured."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})
    started = time.perf_counter()
    frame = generate(steps=steps, scale=scale, seed=seed)
    generated = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "month.csv"
        write_paysim(frame, path)
        written = time.perf_counter()
        size = path.stat().st_size
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "steps": steps,
        "scale": scale,
        "seed": seed,
        "rows": frame.height,
        "fraud_rows": int(frame["isFraud"].sum()),
        "generate_s": round(generated - started, 2),
        "write_csv_s": round(written - generated, 2),
        "total_s": round(written - started, 2),
        # Linux reports ru_maxrss in KiB.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "csv_mb": round(size / 2**20, 1),
        "cores_used": 1,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "polars": pl.__version__},
    }


if __name__ == "__main__":
    main()
