"""Prometheus config and alert rules: promtool accepts them, each alert has a firing and a quiet unit test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.promql import (
    LABEL_EQUALS,
    LABELLED_SELECTOR,
    PROMETHEUS_DIR,
    PROMETHEUS_SERIES,
    RULES,
    dashboard_queries,
    exported_series,
    metric_names,
    preinitialised_label_values,
    recorded_names,
    rules,
)
from tests.infra.support import tool

RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
REQUIRED_ALERTS = {
    "MomoGuardScorerDown",
    "MomoGuardConsumerLagHigh",
    "MomoGuardDeadLetterRateHigh",
    "MomoGuardLatencyP99High",
    "MomoGuardBlockRateUnusual",
    "MomoGuardModelStale",
    "MomoGuardScorerStalled",
    "MomoGuardOutputTopicMissing",
    "MomoGuardLateVerdictsHigh",
    "MomoGuardDriftHigh",
}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_rules_and_panels_match_only_label_values_the_scorer_exports() -> None:
    known = preinitialised_label_values()
    assert known[("momoguard_model_reloads_total", "outcome")] == {"loaded", "unreachable", "unusable"}
    checked = 0
    for expr in [rule["expr"] for rule in rules()] + [expr for _, expr in dashboard_queries()]:
        for name, matchers in LABELLED_SELECTOR.findall(expr):
            for label, value in LABEL_EQUALS.findall(matchers):
                if (name, label) in known:
                    assert value in known[(name, label)], f"{name}{{{label}={value!r}}} is never exported"
                    checked += 1
    assert checked, "no label matcher checked"


def test_promtool_accepts_the_config_and_finds_the_rule_files() -> None:
    done = promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(RULES)} rule files found" in done.stdout


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", *RULES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool unit tests found"
    done = promtool("test", "rules", *RULE_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS), done.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts >= REQUIRED_ALERTS
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown staying quiet"


def test_rules_read_only_series_the_scorer_exports_or_rules_record() -> None:
    known = exported_series() | recorded_names() | PROMETHEUS_SERIES
    for rule in rules():
        used = metric_names(rule["expr"])
        assert used, f"no series found in {rule['expr']!r}"
        assert used <= known, f"{rule.get('alert') or rule.get('record')}: unknown series {used - known}"


def test_the_scrape_job_keeps_momoguard_series_from_file_listed_workers() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "momoguard-scorer"]
    assert job["metrics_path"] == "/metrics"
    for folder, expected in (("targets", {"127.0.0.1:6066"}), ("targets-compose", {"scorer:6066", "scorer:6067"})):
        listed = {t for path in (PROMETHEUS_DIR / folder).glob("*.json") for group in yaml.safe_load(path.read_text())
                  for t in group["targets"]}  # fmt: skip
        assert listed == expected, folder


def test_the_series_extractor_finds_names_and_skips_labels_functions_and_keywords() -> None:
    expr = (
        "abs(ln(a:b / avg_over_time(a:b[1d] offset 15m))) > 0.693 and on (x) "
        'sum by (le) (rate(momo_total{decision="block", le=~"0.5"}[5m])) > 1e3 or vector(0)'
    )
    assert metric_names(expr) == {"a:b", "momo_total"}
    with pytest.raises(AssertionError):
        assert metric_names("rate(momguard_typo_total[5m])") <= exported_series()
