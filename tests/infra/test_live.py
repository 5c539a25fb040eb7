"""During a real replay through a real scorer: Prometheus scrapes it, and the built-in dashboard shows it live."""

from __future__ import annotations

import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from core.settings import PROJECT_ROOT
from stream_app.dashboard import quantile
from stream_app.process import get_json
from tests.infra.promql import PROMETHEUS_DIR, dashboard_queries, rules
from tests.infra.support import Replay, tool
from tests.support.harness import ScorerEnv, ScorerProcess, free_port
from tests.support.waiting import wait_for, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Kept after the run for people (and CI artifacts): the dashboard as a browser showed it during the replay.
SCREENSHOT = PROJECT_ROOT / "reports" / "observability" / "dashboard.png"


# --- Prometheus ------------------------------------------------------------------------------------------


class Prometheus:
    """A real Prometheus on loopback, with the project's config pointed at one test scorer."""

    def __init__(self, folder: Path, scorer_port: int) -> None:
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        # The project's file, three things changed: faster intervals, absolute rule paths, this test's worker.
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
        (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "momoguard-scorer"]
        targets = folder / "targets.json"
        targets.write_text(orjson.dumps([{"targets": [f"127.0.0.1:{scorer_port}"]}]).decode())
        job["file_sd_configs"] = [{"files": [str(targets)], "refresh_interval": "1s"}]
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = folder / "prometheus.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    tool("prometheus"),
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        body = get_json(f"{self.url}/api/v1/{path}{query}")
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        return list(data["result"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Callable[[int], Prometheus]]:
    started: list[Prometheus] = []

    def start(scorer_port: int) -> Prometheus:
        server = Prometheus(tmp_path, scorer_port)
        started.append(server)

        def ready() -> bool:
            if server.proc.poll() is not None:
                pytest.fail(f"prometheus exited: {server.log.read_text()[-2000:]}")
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                return response.status == 200

        wait_for("Prometheus to be ready", ready, timeout=60)
        return server

    yield start
    for server in started:
        server.stop()


def test_prometheus_scrapes_the_scorer_during_a_replay(
    scorer_env: ScorerEnv, scorer: ScorerProcess, prometheus_for: Callable[[int], Prometheus]
) -> None:
    s = scorer_env.settings
    prometheus = prometheus_for(s.web_port)
    with Replay(s.kafka_bootstrap, s.topic_transactions, total=3000, rate_per_s=500) as replay:
        sent = replay.wait()
    assert sent == 3000

    def total(expr: str) -> float:
        result = prometheus.query(expr)
        return float(result[0]["value"][1]) if result else 0.0

    def seen_by_prometheus() -> tuple[float, float]:
        """(transactions scored, latencies observed), as Prometheus last scraped them."""
        scored, latencies = "momoguard_transactions_scored_total", "momoguard_end_to_end_latency_seconds_count"
        return total(f"sum({scored})"), total(f"sum({latencies})")

    # The scorer counts a batch once it is delivered, and Prometheus scrapes once a second: wait until a scrape
    # has both figures of the whole replay (a snapshot once raced the last batch: 2989 of 3000).
    wait_until("Prometheus's (scored, latencies)", seen_by_prometheus, lambda v: v == (sent, sent), timeout=120)

    (up,) = prometheus.query('up{job="momoguard-scorer"}')
    assert up["value"][1] == "1" and up["metric"]["instance"] == f"127.0.0.1:{s.web_port}"
    (model,) = prometheus.query("momoguard_model_info")
    assert model["metric"]["model_version"] == "1" and model["metric"]["model_name"] == s.model_name
    by_decision = {r["metric"]["decision"]: float(r["value"][1]) for r in prometheus.query(
        "sum by (decision) (momoguard_transactions_scored_total)")}  # fmt: skip
    assert set(by_decision) == {"allow", "review", "block"} and by_decision["allow"] > 0
    assert by_decision["review"] == 0, "the review tier is off by default"
    (late,) = prometheus.query("sum(momoguard_late_verdicts_total)")
    assert 0 <= float(late["value"][1]) <= sent

    # The built-in dashboard's quantile agrees with Prometheus's histogram_quantile on the same buckets.
    with urllib.request.urlopen(f"{scorer_env.web}/metrics", timeout=5) as response:
        exposition = response.read().decode()
    buckets = sorted(
        (float(sample.labels["le"]), sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "momoguard_end_to_end_latency_seconds_bucket"
    )
    for q in (0.5, 0.99):
        expr = f"histogram_quantile({q}, sum by (le) (momoguard_end_to_end_latency_seconds_bucket))"
        (result,) = prometheus.query(expr)
        assert quantile(q, tuple(buckets)) == pytest.approx(float(result["value"][1]), rel=1e-9)

    # Every Grafana query runs on the real server; the ones over what this replay moved return data.
    for title, expr in dashboard_queries():
        result = prometheus.query(expr)
        if title in {"Throughput by decision", "End-to-end latency", "Model", "Consumer lag by partition"}:
            assert result, f"{title}: no data for {expr!r}"

    # The rule files loaded, and every rule evaluates without error against real series.
    def rules_evaluated() -> list[dict[str, Any]]:
        groups = prometheus.api("rules")["groups"]
        loaded = [rule for group in groups for rule in group["rules"]]
        return loaded if loaded and all(rule.get("lastEvaluation", "").startswith("2") for rule in loaded) else []

    loaded = wait_for("every rule to be evaluated", rules_evaluated, timeout=60)
    assert {r["name"] for r in loaded} == {r.get("alert") or r["record"] for r in rules()}
    assert all(r["health"] == "ok" for r in loaded), [(r["name"], r.get("lastError")) for r in loaded]
    assert scorer.stop() == 0


# --- the built-in dashboard ------------------------------------------------------------------------------


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    # --no-sandbox: tests often run as root in CI containers, where Chromium's sandbox refuses to start.
    command = [
        tool("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1600,860",
        "--enable-logging=stderr",  # the page's console, to catch script errors
        "--virtual-time-budget=5000",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def tile(dom: str, name: str) -> str:
    match = re.search(rf'id="tile-{name}">([^<]*)<', dom)
    assert match, f"tile {name} not found in the page"
    return match.group(1)


def test_dashboard_shows_live_throughput_and_the_model_version(
    scorer_env: ScorerEnv, scorer: ScorerProcess, tmp_path: Path
) -> None:
    s = scorer_env.settings
    page = f"{scorer_env.web}/dashboard"
    with urllib.request.urlopen(f"{page}/static/dashboard.js", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("application/javascript")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{page}/static/..%2Fdashboard.py", timeout=5)
    assert missing.value.code == 404

    # Before any traffic: the page renders the idle state without script errors.
    idle = chromium("--dump-dom", page, profile=tmp_path / "profile-idle")
    assert idle.returncode == 0 and "Uncaught" not in idle.stderr, idle.stderr[-2000:]
    assert tile(idle.stdout, "throughput") == "0.0 tx/s" and tile(idle.stdout, "model") == "v1"

    # A replay long enough to outlast the browser's start, stopped once the pictures are taken.
    with Replay(s.kafka_bootstrap, s.topic_transactions, total=20_000, rate_per_s=300):

        def flowing() -> bool:
            data = get_json(f"{page}/data")
            history, drift = data["history"], data["drift"]
            assert isinstance(history, dict) and isinstance(drift, dict)
            moving = [a + b for a, b in zip(history["allow_per_s"], history["block_per_s"], strict=True) if a + b > 0]
            # ten seconds of traffic on the charts, so the picture says something, and the drift window filled
            return len(moving) >= 10 and bool(drift["psi"])

        wait_for("the dashboard data to show throughput", flowing)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shot = chromium(f"--screenshot={SCREENSHOT}", page, profile=tmp_path / "profile-shot")
        dom = chromium("--dump-dom", page, profile=tmp_path / "profile-dom")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert dom.returncode == 0, dom.stderr[-2000:]
    for run in (shot, dom):
        assert "Uncaught" not in run.stderr, [line for line in run.stderr.splitlines() if "CONSOLE" in line]

    # What the page's script rendered from /dashboard/data, as the browser holds it.
    throughput = tile(dom.stdout, "throughput")
    assert re.fullmatch(r"[\d.,k]+ tx/s", throughput) and float(throughput.split()[0].rstrip("k").replace(",", "")) > 0
    assert tile(dom.stdout, "model") == "v1"
    assert 'class="status live"' in dom.stdout
    assert re.search(r"[\d,]+ scored since start", dom.stdout)
    # The drift panel: the champion's training reference against the replayed rows, one bar per watched input.
    assert dom.stdout.count('class="drift-row') >= 10 and "<span>score</span>" in dom.stdout, "no drift bars"
    assert '<div id="shadow" class="shadow">none</div>' in dom.stdout

    # The screenshot: a full page, the "live" badge drawn, and the throughput chart's allow line drawn.
    image = Image.open(SCREENSHOT).convert("RGB")
    assert image.size == (1600, 860)
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20) or []}
    assert (0xD3, 0xF9, 0xD8) in colours, "the live badge is not in the screenshot"
    assert (0x2B, 0x8A, 0x3E) in colours, "the allow series is not drawn"
    assert scorer.stop() == 0
