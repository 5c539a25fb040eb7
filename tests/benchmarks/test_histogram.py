"""The bench's reading of a worker's latency histograms: over HTTP from /metrics, between two moments, in ms."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, start_http_server

from benchmarks.harness import HistogramReading, read_histogram
from core.errors import MomoGuardError
from stream_app.metrics import BulkHistogram
from tests.support.harness import free_port


@pytest.fixture
def served() -> Iterator[tuple[str, BulkHistogram]]:
    registry = CollectorRegistry()
    histogram = BulkHistogram("demo_delay_seconds", "a delay", (0.001, 0.01, 0.1, 1.0), registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{port}", histogram
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_reading_between_two_moments_counts_only_what_was_observed_between_them(
    served: tuple[str, BulkHistogram],
) -> None:
    web, histogram = served
    histogram.observe_many(np.full(100, 5.0))  # before: all beyond the last bucket
    before = read_histogram(web, "demo_delay_seconds")
    assert before.count == 100 and before.total == pytest.approx(500.0)
    histogram.observe_many(np.array([0.005] * 98 + [0.05, 0.5]))
    stretch = read_histogram(web, "demo_delay_seconds").since(before)
    assert stretch.count == 100
    summary = stretch.summary_ms()
    assert summary is not None
    assert summary.count == 100
    assert summary.mean == pytest.approx(1000 * (98 * 0.005 + 0.05 + 0.5) / 100)
    # Prometheus's interpolation: rank 50 of 98 in (1 ms, 10 ms]; rank 99 is the one value in (10 ms, 100 ms].
    assert summary.p50 == pytest.approx(1 + 9 * 50 / 98)
    assert summary.p99 == pytest.approx(100.0)
    assert summary.beyond_last_bucket == 0


def test_observations_beyond_the_last_bucket_are_counted_apart() -> None:
    buckets = ((0.001, 0.0), (0.01, 10.0), (1.0, 10.0), (math.inf, 100.0))
    summary = HistogramReading(buckets, total=90 * 3.0 + 10 * 0.005).summary_ms()
    assert summary is not None
    assert summary.beyond_last_bucket == 90
    assert summary.p99 == pytest.approx(1000.0)  # all the histogram can say: at least its highest bound
    assert summary.mean == pytest.approx(1000 * (270 + 0.05) / 100)


def test_no_observations_has_no_summary(served: tuple[str, BulkHistogram]) -> None:
    web, _ = served
    assert read_histogram(web, "demo_delay_seconds").summary_ms() is None


def test_a_histogram_the_worker_does_not_have_is_a_clear_error(served: tuple[str, BulkHistogram]) -> None:
    web, _ = served
    with pytest.raises(MomoGuardError, match="has no histogram momoguard_nope_seconds"):
        read_histogram(web, "momoguard_nope_seconds")
