"""The PromQL of the Grafana dashboard and of the alert rules, and the metric names an expression reads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.settings import PROJECT_ROOT
from stream_app.metrics import ScorerMetrics

PROMETHEUS_DIR = PROJECT_ROOT / "infra" / "prometheus"
GRAFANA_DIR = PROJECT_ROOT / "infra" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "momoguard.json"
RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))

# Grafana fills these in before a query reaches Prometheus; the values are what a default view sends.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$instance": ".*"}
# Series Prometheus makes itself for every target: the only names allowed that the scorer does not export.
PROMETHEUS_SERIES = {"up"}

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
_KEYWORDS |= {"inf", "nan"}


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # panels folded inside rows
    return found


def with_variables(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def dashboard_queries(dashboard: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(panel title, expression as Prometheus receives it) for every query of every panel."""
    dashboard = dashboard or load_dashboard()
    return [
        (panel["title"], with_variables(target["expr"]))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def rules() -> list[dict[str, Any]]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects; functions, operators, keywords and labels are skipped."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values)
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1()", text)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)", text):
        name = match.group(1)
        rest = text[match.end() :].lstrip()
        if name.lower() in _KEYWORDS or rest.startswith("(") or re.match(r"(by|without)\b", rest):
            continue
        names.add(name)
    return names


def exported_series() -> set[str]:
    """Every series name a real ScorerMetrics registry exposes, read back from its text exposition."""
    metrics = ScorerMetrics()
    # Labelled metrics show samples only once a child exists, as they do in a running scorer.
    metrics.invalid.labels("not_json").inc()
    metrics.lag.labels("transactions", "0").set(3)
    metrics.set_model("momoguard-fraud", "1", 0.5, 0.0)
    names: set[str] = set()
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        names |= {sample.name for sample in family.samples}
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        names |= {family.name + suffix for suffix in suffixes}
    return names


def preinitialised_label_values() -> dict[tuple[str, str], set[str]]:
    """(series, label) -> values, for the labels a fresh ScorerMetrics exports before anything happens."""
    known: dict[tuple[str, str], set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(ScorerMetrics().registry).decode()):
        for sample in family.samples:
            for label, value in sample.labels.items():
                known.setdefault((sample.name, label), set()).add(value)
    return known


LABELLED_SELECTOR = re.compile(r"(momoguard_\w+)\{([^}]*)\}")
LABEL_EQUALS = re.compile(r'(\w+)\s*=\s*"([^"]*)"')  # label="value", not =~ or !=
