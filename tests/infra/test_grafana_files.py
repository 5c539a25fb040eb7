"""The Grafana dashboard and its provisioning: every panel queries series the scorer really exports, in valid PromQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.infra.promql import (
    DASHBOARD,
    GRAFANA_DIR,
    PROMETHEUS_SERIES,
    dashboard_queries,
    exported_series,
    load_dashboard,
    metric_names,
    panels,
    recorded_names,
)
from tests.infra.support import tool

# What an operator must see, each named by the series its panel reads.
REQUIRED = {
    "Throughput by decision": "momoguard_transactions_scored_total",
    "Block rate": "momoguard_transactions_scored_total",
    "End-to-end latency": "momoguard_end_to_end_latency_seconds_bucket",
    "Dead-letter rate by reason": "momoguard_invalid_messages_total",
    "Consumer lag by partition": "momoguard_consumer_lag",
    "Model": "momoguard_model_info",
    "Score distribution": "momoguard_score_bucket",
    "Review rate": "momoguard_transactions_scored_total",
    "List decisions": "momoguard_list_decisions_total",
    "Late verdicts": "momoguard_late_verdicts_total",
    "Drift (PSI against the training data)": "momoguard_drift_psi",
    "Shadow challenger": "momoguard_shadow_decisions_total",
}


def test_every_panel_reads_only_series_the_scorer_exports() -> None:
    known = exported_series() | recorded_names() | PROMETHEUS_SERIES
    queries = dashboard_queries()
    assert len(queries) >= len(REQUIRED)
    for title, expr in queries:
        used = metric_names(expr)
        assert used, f"{title}: no series in {expr!r}"
        assert used <= known, f"{title}: unknown series {used - known} in {expr!r}"


def test_the_operator_panels_are_there() -> None:
    by_title: dict[str, set[str]] = {}
    for title, expr in dashboard_queries():
        by_title.setdefault(title, set()).update(metric_names(expr))
    for title, series in REQUIRED.items():
        assert series in by_title.get(title, set()), f"panel {title!r} reading {series} is missing"
    latency = [expr for title, expr in dashboard_queries() if title == "End-to-end latency"]
    assert any("histogram_quantile(0.5," in e for e in latency)
    assert any("histogram_quantile(0.99," in e for e in latency)


def test_every_expression_parses(tmp_path: Path) -> None:
    # promtool has no bare PromQL parser in Debian's version: each query becomes a recording rule it checks.
    rules = [{"record": f"dashboard:panel_{i}", "expr": expr} for i, (_, expr) in enumerate(dashboard_queries())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_a_broken_expression_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    broken = {"record": "x:y", "expr": "sum(rate(a[5m])"}  # one parenthesis short
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [broken]}]}))
    done = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0


def test_provisioning_points_grafana_at_the_dashboard_and_the_datasource_it_uses() -> None:
    dashboard = load_dashboard()
    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {d["uid"] for d in datasources["datasources"] if d["type"] == "prometheus"}
    for panel in panels(dashboard):
        for item in [panel, *panel.get("targets", [])]:
            if "datasource" in item:
                assert item["datasource"]["uid"] in uids, panel["title"]
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "momoguard.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert dashboard["uid"] and len({p["id"] for p in panels(dashboard)}) == len(panels(dashboard))
    # docker-compose mounts the dashboards folder where the provider reads.
    compose = yaml.safe_load((GRAFANA_DIR.parents[1] / "docker-compose.yml").read_text())
    mounts = [str(v) for v in compose["services"]["grafana"]["volumes"]]
    folder = DASHBOARD.parent.relative_to(GRAFANA_DIR.parents[1])
    assert f"./{folder}:{provider['options']['path']}:ro" in mounts
