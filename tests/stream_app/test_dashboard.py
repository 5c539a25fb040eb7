"""The built-in dashboard's figures, in memory: rates, quantiles and history from a real ScorerMetrics registry."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from stream_app.dashboard import ASSETS, STATIC_DIR, LiveView, quantile
from stream_app.metrics import ScorerMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def metrics() -> ScorerMetrics:
    m = ScorerMetrics()
    m.set_model("momoguard-fraud", "7", 0.42, 1_700_000_000.0)
    return m


def view_of(metrics: ScorerMetrics, clock: Clock) -> LiveView:
    return LiveView(metrics.registry, clock=clock, wall_clock=lambda: 1_800_000_000.0 + clock.now)


def test_rates_are_over_the_last_ten_seconds(metrics: ScorerMetrics) -> None:
    clock = Clock()
    view = view_of(metrics, clock)
    for second in range(31):
        clock.now = float(second)
        if second <= 20:  # 90 allowed and 10 blocked a second for 20 s, then nothing
            metrics.scored.labels("allow").inc(90 if second else 0)
            metrics.scored.labels("block").inc(10 if second else 0)
        view.sample()
        if second == 20:
            now = view.data()["now"]
            assert now["allow_per_s"] == pytest.approx(90) and now["block_per_s"] == pytest.approx(10)
            assert now["block_rate"] == pytest.approx(0.1)
        if second == 25:  # half the window idle
            assert view.data()["now"]["allow_per_s"] == pytest.approx(45)
    data = view.data()
    assert data["now"]["allow_per_s"] == 0 and data["now"]["block_rate"] is None, "idle: no rate, not 0%"
    assert data["totals"]["scored"] == {"allow": 1800, "block": 200, "review": 0}
    assert data["model"] == {
        "name": "momoguard-fraud",
        "version": "7",
        "threshold": 0.42,
        "review_threshold": None,
        "loaded_at": 1_700_000_000.0,
        "reloads": {"loaded": 0, "unreachable": 0, "unusable": 0},
    }


def test_review_list_decisions_and_the_late_share(metrics: ScorerMetrics) -> None:
    metrics.set_model("momoguard-fraud", "8", 0.42, 1_700_000_000.0, review_threshold=0.05)
    clock = Clock()
    view = view_of(metrics, clock)
    view.sample()
    clock.now = 10.0
    metrics.scored.labels("allow").inc(700)
    metrics.scored.labels("review").inc(200)
    metrics.scored.labels("block").inc(100)  # 40 of them by a block entry
    metrics.list_decisions.labels("block").inc(40)
    metrics.list_decisions.labels("allow").inc(10)
    metrics.late.inc(50)
    view.sample()
    data = view.data()
    now = data["now"]
    assert now["review_per_s"] == pytest.approx(20) and now["block_per_s"] == pytest.approx(10)
    assert now["block_rate"] == pytest.approx(0.1), "of every verdict, reviewed ones included"
    assert now["listed_per_s"] == pytest.approx(5)
    assert now["late_rate"] == pytest.approx(0.05)
    assert data["totals"]["listed"] == {"block": 40, "review": 0, "allow": 10} and data["totals"]["late"] == 50
    assert data["model"]["review_threshold"] == 0.05
    assert {"review_per_s", "listed_per_s", "late_rate"} <= set(data["history"])


def test_dead_letters_lag_and_latency(metrics: ScorerMetrics) -> None:
    clock = Clock()
    view = view_of(metrics, clock)
    view.sample()
    clock.now = 10.0
    metrics.invalid.labels("not_json").inc(15)
    metrics.invalid.labels("too_large").inc(5)
    metrics.lag.labels("transactions", "0").set(120)
    metrics.lag.labels("transactions", "1").set(30)
    # 98 fast verdicts, 2 slow ones: p50 in the first bucket, p99 in the 100-250 ms bucket
    metrics.end_to_end.observe_many(np.array([0.0008] * 98 + [0.2, 0.2]))
    view.sample()
    data = view.data()
    now = data["now"]
    assert now["dead_letters_per_s"] == pytest.approx(2.0)
    assert now["lag"] == 150 and data["lag"] == {"transactions:0": 120, "transactions:1": 30}
    assert now["p50_ms"] == pytest.approx(0.5 / 0.98 * 1.0)  # linear inside the first bucket [0, 1 ms]
    assert 100 < now["p99_ms"] <= 250
    assert data["totals"]["dead_letters"] == {"not_json": 15, "too_large": 5}


def test_score_distribution_counts_each_bucket_once(metrics: ScorerMetrics) -> None:
    clock = Clock()
    view = view_of(metrics, clock)
    view.sample()
    metrics.score.observe_many(np.array([0.00002, 0.01, 0.02, 0.03, 0.97, 0.9995]))
    clock.now = 1.0
    view.sample()
    scores = view.data()["scores"]
    assert sum(scores["counts"]) == 6
    count = dict(zip(scores["bounds"], scores["counts"], strict=True))
    assert count[0.0001] == 1 and count[0.001] == 0  # genuine scores far below any threshold get their own buckets
    assert count[0.01] == 1 and count[0.025] == 1 and count[0.05] == 1  # a bound counts in its own bucket
    assert scores["bounds"][-1] is None and scores["counts"][-1] == 1  # above 0.999
    assert scores["counts"][scores["bounds"].index(0.99)] == 1


def test_history_keeps_five_minutes_and_is_plain_json(metrics: ScorerMetrics) -> None:
    clock = Clock()
    view = view_of(metrics, clock)
    for second in range(400):
        clock.now = float(second)
        view.sample()
    data = view.data()
    times = data["history"]["t"]
    assert times[-1] - times[0] == 300 and len(times) == 301
    assert all(len(column) == len(times) for column in data["history"].values())
    assert data["now"]["p99_ms"] is None, "no traffic: no latency, not NaN"
    json.dumps(data, allow_nan=False)  # NaN or Infinity would break the page's JSON.parse


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.5, 0.01), (0.9, 0.05), (0.95, 0.05 + 0.05 * 5 / 9), (0.999, 0.1), (0.0, 0.0)],
)
def test_quantile_follows_prometheus_histogram_quantile(q: float, expected: float) -> None:
    buckets = ((0.01, 50.0), (0.05, 90.0), (0.1, 99.0), (math.inf, 100.0))
    assert quantile(q, buckets) == pytest.approx(expected)


def test_quantile_without_observations_is_none() -> None:
    assert quantile(0.99, ((0.01, 0.0), (math.inf, 0.0))) is None
    assert quantile(0.99, ()) is None


def test_the_page_loads_nothing_from_outside_the_worker() -> None:
    page = (STATIC_DIR / "dashboard.html").read_text()
    referenced = set(re.findall(r'(?:src|href)="([^"]+)"', page))
    assert referenced == {f"/dashboard/static/{name}" for name in ASSETS}
    for name in ["dashboard.html", *ASSETS]:
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), f"{name} reaches out"
        assert "@import" not in text and "url(" not in text
