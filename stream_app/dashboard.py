"""The built-in live dashboard: `/dashboard` and the `/dashboard/data` JSON it polls, from the worker's own metrics."""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from stream_app.state import ScorerState

STATIC_DIR = Path(__file__).with_name("static")
# Only these files are served: a fixed list, so no request path ever reaches the file system.
ASSETS = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}

SAMPLE_INTERVAL_S = 1.0
WINDOW_S = 10.0  # rates and quantiles over the last 10 s: short enough to follow a replay, long enough to be steady
HISTORY_S = 300.0  # the charts show five minutes

# (upper bound, cumulative count) pairs in ascending order, the last bound +Inf: a Prometheus histogram.
Buckets = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Snapshot:
    """The values of a worker's metrics at one moment."""

    at: float  # monotonic seconds, for rates
    wall: float  # epoch seconds, for the chart's time axis
    scored: dict[str, float]
    dead_letters: dict[str, float]
    latency: Buckets
    scores: Buckets
    lag: dict[str, float]
    model_name: str
    model_version: str
    threshold: float
    loaded_at: float
    reloads: dict[str, float]
    listed: dict[str, float]  # verdicts decided by a list entry, by its action
    late: float  # verdicts made after event time + the deadline
    review_threshold: float  # 0: no review tier


def take_snapshot(registry: CollectorRegistry, at: float, wall: float) -> Snapshot:
    """Read every MoMo Guard metric the dashboard shows from a registry, as Prometheus would scrape it."""
    scored: dict[str, float] = {}
    dead: dict[str, float] = {}
    reloads: dict[str, float] = {}
    listed: dict[str, float] = {}
    lag: dict[str, float] = {}
    latency: list[tuple[float, float]] = []
    scores: list[tuple[float, float]] = []
    model_name = model_version = ""
    threshold = loaded_at = math.nan
    late = review_threshold = 0.0
    for family in registry.collect():
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name == "momoguard_transactions_scored_total":
                scored[labels["decision"]] = value
            elif name == "momoguard_invalid_messages_total":
                dead[labels["reason"]] = value
            elif name == "momoguard_end_to_end_latency_seconds_bucket":
                latency.append((float(labels["le"]), value))
            elif name == "momoguard_score_bucket":
                scores.append((float(labels["le"]), value))
            elif name == "momoguard_consumer_lag":
                lag[f"{labels['topic']}:{labels['partition']}"] = value
            elif name == "momoguard_model_info" and value == 1:
                model_name, model_version = labels["model_name"], labels["model_version"]
            elif name == "momoguard_model_threshold":
                threshold = value
            elif name == "momoguard_model_loaded_timestamp_seconds":
                loaded_at = value
            elif name == "momoguard_model_reloads_total":
                reloads[labels["outcome"]] = value
            elif name == "momoguard_list_decisions_total":
                listed[labels["action"]] = value
            elif name == "momoguard_late_verdicts_total":
                late = value
            elif name == "momoguard_model_review_threshold":
                review_threshold = value
    return Snapshot(
        at=at,
        wall=wall,
        scored=scored,
        dead_letters=dead,
        latency=tuple(sorted(latency)),
        scores=tuple(sorted(scores)),
        lag=lag,
        model_name=model_name,
        model_version=model_version,
        threshold=threshold,
        loaded_at=loaded_at,
        reloads=reloads,
        listed=listed,
        late=late,
        review_threshold=review_threshold,
    )


def bucket_increase(old: Buckets, new: Buckets) -> Buckets:
    """The observations between two readings of one histogram."""
    if [b for b, _ in old] != [b for b, _ in new]:
        return new
    return tuple((bound, max(0.0, n - o)) for (bound, n), (_, o) in zip(new, old, strict=True))


def quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus's `histogram_quantile`: linear inside the bucket holding the rank; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # as Prometheus: the highest finite bound, the histogram cannot say more
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None


@dataclass(frozen=True)
class Point:
    """What the dashboard plots for one moment: rates and quantiles over the window ending there."""

    wall: float
    allow_per_s: float
    review_per_s: float
    block_per_s: float
    block_rate: float | None
    listed_per_s: float  # decided by a list entry (any action)
    late_rate: float | None  # share of the window's verdicts made after the deadline
    p50_ms: float | None
    p99_ms: float | None
    dead_letters_per_s: float
    lag: float


def point_between(old: Snapshot, new: Snapshot) -> Point:
    seconds = new.at - old.at

    def per_s(new_values: dict[str, float], old_values: dict[str, float], keys: Iterable[str]) -> float:
        if seconds <= 0:
            return 0.0
        return sum(max(0.0, new_values.get(k, 0.0) - old_values.get(k, 0.0)) for k in keys) / seconds

    allow = per_s(new.scored, old.scored, ["allow"])
    review = per_s(new.scored, old.scored, ["review"])
    block = per_s(new.scored, old.scored, ["block"])
    scored = allow + review + block
    late = per_s({"late": new.late}, {"late": old.late}, ["late"])
    latency = bucket_increase(old.latency, new.latency)
    p50, p99 = quantile(0.5, latency), quantile(0.99, latency)
    return Point(
        wall=new.wall,
        allow_per_s=allow,
        review_per_s=review,
        block_per_s=block,
        block_rate=block / scored if scored > 0 else None,
        listed_per_s=per_s(new.listed, old.listed, new.listed),
        late_rate=min(1.0, late / scored) if scored > 0 else None,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        dead_letters_per_s=per_s(new.dead_letters, old.dead_letters, new.dead_letters),
        lag=sum(new.lag.values()),
    )


class LiveView:
    """Samples a registry every second and keeps five minutes of points, in memory, for the dashboard."""

    def __init__(
        self,
        registry: CollectorRegistry,
        window_s: float = WINDOW_S,
        history_s: float = HISTORY_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.window_s = window_s
        self.history_s = history_s
        self.clock = clock
        self.wall_clock = wall_clock
        self.snapshots: deque[Snapshot] = deque()
        self.points: deque[Point] = deque()

    def sample(self) -> Snapshot:
        snap = take_snapshot(self.registry, self.clock(), self.wall_clock())
        self.snapshots.append(snap)
        while self.snapshots[0].at < snap.at - self.history_s:
            self.snapshots.popleft()
        self.points.append(point_between(self._at_or_before(snap.at - self.window_s), snap))
        while self.points[0].wall < snap.wall - self.history_s:
            self.points.popleft()
        return snap

    def _at_or_before(self, at: float) -> Snapshot:
        """The newest snapshot taken at or before `at` (the oldest one while the window is still filling)."""
        chosen = self.snapshots[0]
        for snap in self.snapshots:
            if snap.at > at:
                break
            chosen = snap
        return chosen

    def data(self) -> dict[str, Any]:
        """The JSON the page polls: current values, totals, the score distribution and the history columns."""
        latest = self.snapshots[-1] if self.snapshots else self.sample()
        oldest = self.snapshots[0]
        now = self.points[-1] if self.points else point_between(latest, latest)
        score_counts = bucket_increase(oldest.scores, latest.scores) if oldest is not latest else latest.scores
        previous = 0.0
        per_bucket: list[float] = []
        for _, cumulative in score_counts:
            per_bucket.append(cumulative - previous)
            previous = cumulative
        points = list(self.points)
        return {
            "generated_at": latest.wall,
            "window_s": self.window_s,
            "model": {
                "name": latest.model_name,
                "version": latest.model_version,
                "threshold": _finite(latest.threshold),
                "review_threshold": latest.review_threshold or None,
                "loaded_at": _finite(latest.loaded_at),
                "reloads": latest.reloads,
            },
            "now": dataclasses.asdict(now),
            "totals": {
                "scored": latest.scored,
                "dead_letters": latest.dead_letters,
                "listed": latest.listed,
                "late": latest.late,
            },
            "lag": dict(sorted(latest.lag.items())),
            "scores": {
                "span_s": latest.at - oldest.at,
                "bounds": [None if math.isinf(b) else b for b, _ in score_counts],
                "counts": per_bucket,
            },
            # One list per field of Point, the time axis as "t": columns, as the chart library takes them.
            "history": {
                ("t" if f.name == "wall" else f.name): [getattr(p, f.name) for p in points]
                for f in dataclasses.fields(Point)
            },
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def register_dashboard(app: faust.App, state: ScorerState) -> None:
    """Serve the live dashboard on the worker's web port and sample its metrics every second."""
    live = LiveView(state.metrics.registry)
    page = (STATIC_DIR / "dashboard.html").read_text(encoding="utf-8")
    assets = {name: (STATIC_DIR / name).read_bytes() for name in ASSETS}

    @app.timer(interval=SAMPLE_INTERVAL_S)
    async def sample_dashboard() -> None:
        live.sample()

    @app.page("/dashboard")
    class Dashboard(View):
        async def get(self, request: Request) -> Response:
            return self.html(page)

    @app.page("/dashboard/data")
    class DashboardData(View):
        async def get(self, request: Request) -> Response:
            body = live.data()
            body["worker"] = {
                "consumer_group": state.settings.consumer_group,
                "topic": state.settings.topic_transactions,
                "partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment()),
            }
            if state.closed_loop is not None:  # drift against the champion's training data, the challenger
                body["drift"] = state.closed_loop.drift.view()
                body["shadow"] = state.closed_loop.shadow.view()
            return self.json(body, headers={"Cache-Control": "no-store"})

    @app.page("/dashboard/static/{name}")
    class DashboardAsset(View):
        async def get(self, request: Request, name: str) -> Response:
            if name not in assets:
                return self.text("not found", status=404)
            return self.bytes(assets[name], content_type=ASSETS[name])
