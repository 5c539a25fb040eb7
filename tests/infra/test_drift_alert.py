"""Drift end to end: a real scorer's PSI on a replay of the training rows stays near 0, on the same rows with the
amounts shifted (`momoguard replay --shift-amount`) it passes 0.2, and the alert rule fires on the second only."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from core.settings import Settings
from paysim.generator import write_paysim
from tests.infra.promql import PROMETHEUS_DIR
from tests.infra.support import tool
from tests.support.cli import run_momoguard
from tests.support.harness import ScorerEnv, ScorerProcess, until
from tests.support.models import sample_frame
from tests.support.waiting import scorer_metric

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROWS = 10_245  # every real sample row: the rows the test champion learnt from and took its reference on


def measured_psi(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], data: Path, tmp: Path, *replay: str
) -> dict[str, float]:
    """The PSI gauges of a fresh scorer once it has scored one replay of `data`."""
    scorer = start_scorer()
    scorer.wait_ready()
    done = run_momoguard("replay", "--data", str(data), "--max", "--report", str(tmp), *replay, env=scorer_env.env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    web = scorer_env.web
    until(lambda: scorer_metric(web, "momoguard_drift_window_transactions") == ROWS, "the window holds the replay")
    # The window's size and its PSI gauges are set in one step of the event loop that serves /metrics too.
    with urllib.request.urlopen(f"{web}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert scorer.stop() == 0
    return {
        sample.labels["input"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "momoguard_drift_psi"
    }


def alert_test(psi: dict[str, float]) -> dict[str, object]:
    """A promtool test case holding these gauges for 20 minutes: the alerts the rule must fire, one per input."""
    rule = next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if r.get("alert") == NAME)
    return {
        "interval": "1m",
        "input_series": [
            {"series": f'momoguard_drift_psi{{instance="w0", input="{name}"}}', "values": f"{value!r}x20"}
            for name, value in psi.items()
        ],
        "alert_rule_test": [
            {
                "eval_time": "18m",
                "alertname": NAME,
                "exp_alerts": [
                    {
                        "exp_labels": {"severity": "warning", "input": name},
                        "exp_annotations": {
                            "summary": f"Drift in {name}: PSI {value:.2f} against the training data",
                            "description": rule["annotations"]["description"],
                        },
                    }
                    for name, value in sorted(psi.items())
                    if value > 0.2
                ],
            }
        ],
    }


NAME = "MomoGuardDriftHigh"
RULES = PROMETHEUS_DIR / "rules" / "momoguard.yml"


def test_psi_is_near_zero_on_the_training_rows_above_the_line_when_shifted_and_the_alert_fires_only_then(
    scorer_env: ScorerEnv, own_registry: Settings, start_scorer: Callable[..., ScorerProcess], tmp_path: Path,
    topic_factory: Callable[..., str],
) -> None:  # fmt: skip
    scorer_env.env["MOMOGUARD_DRIFT_MIN_TRANSACTIONS"] = "5000"
    data = tmp_path / "samples.csv"
    write_paysim(sample_frame(), data)
    same = measured_psi(scorer_env, start_scorer, data, tmp_path / "same.json")
    assert same and max(same.values()) < 0.01, same
    assert "hour_of_day" not in same and {"score", "amount"} <= set(same)

    scorer_env.env["MOMOGUARD_TOPIC_TRANSACTIONS"] = topic_factory("transactions", partitions=4)  # a fresh window
    shifted = measured_psi(scorer_env, start_scorer, data, tmp_path / "shifted.json", "--shift-amount", "3")
    assert shifted["amount"] > 0.2, shifted

    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [alert_test(same), alert_test(shifted)]}
    assert not tests["tests"][0]["alert_rule_test"][0]["exp_alerts"]  # type: ignore[index]
    case = tmp_path / "drift.test.yml"
    case.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run([tool("promtool"), "test", "rules", str(case)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
