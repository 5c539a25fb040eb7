"""Bad registry versions against real scorer workers: refused once, counted, and scoring never stops."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from mlflow import MlflowClient

import registry
from core.settings import Settings
from tests.support.cli import run_momoguard
from tests.support.harness import ScorerEnv, ScorerProcess, collect, produce, produce_in_background
from tests.support.models import register_model, sample_rows
from tests.support.registry_faults import BAD_VERSIONS, spoil

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def messages(n: int, run: str) -> list[tuple[bytes | None, bytes, None]]:
    rows = sample_rows()
    txs = [{**rows[i % len(rows)], "tx_id": f"{run}-{i}", "event_time": time.time()} for i in range(n)]
    return [(str(tx["nameOrig"]).encode(), orjson.dumps(tx), None) for tx in txs]


def reloads(scorer: ScorerEnv) -> dict[str, float]:
    with urllib.request.urlopen(f"{scorer.web}/metrics", timeout=5) as response:
        text = response.read().decode()
    prefix = 'momoguard_model_reloads_total{outcome="'
    return {
        line[len(prefix) :].split('"')[0]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    pytest.fail(f"not within {timeout:.0f} s: {what}")


def own_registry(scorer: ScorerEnv, folder: Path) -> Settings:
    """A registry of the test's own (artifacts under `folder`, so a model file can be spoiled), used by the scorer."""
    settings = Settings(run_dir=folder, mlflow_tracking_uri="")
    scorer.env |= {"MOMOGUARD_RUN_DIR": str(folder), "MOMOGUARD_MLFLOW_TRACKING_URI": settings.tracking_uri}
    return settings


@pytest.fixture
def own(scorer_env: ScorerEnv, tmp_path: Path) -> Settings:
    """The test's own registry, its version 1 (a good model, threshold 0.5) the champion."""
    settings = own_registry(scorer_env, tmp_path / "registry")
    register_model(settings, rounds=40, threshold=0.5, tmp=tmp_path)
    return settings


def test_a_running_scorer_refuses_each_bad_champion_once_and_loads_the_next_good_one(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], own: Settings, tmp_path: Path
) -> None:
    s = scorer_env.settings
    bad = {kind: register_model(own, rounds=20, threshold=0.5, tmp=tmp_path, champion=False) for kind in BAD_VERSIONS}
    for kind, version in bad.items():
        spoil(own, version, kind)
    good = register_model(own, rounds=60, threshold=0.4, tmp=tmp_path, champion=False)
    scorer = start_scorer()
    assert scorer.wait_ready()["model_version"] == "1"

    during = messages(6000, "during")
    sender = produce_in_background(s.kafka_bootstrap, s.topic_transactions, during, 500)
    client = MlflowClient(tracking_uri=own.tracking_uri, registry_uri=own.tracking_uri)
    for refused, (kind, version) in enumerate(bad.items(), start=1):
        # Straight to the alias, as `momoguard models promote` would refuse it.
        client.set_registered_model_alias(own.model_name, registry.CHAMPION, version)
        wait_for(lambda n=refused: reloads(scorer_env)["unusable"] == n, f"{kind} (version {version}) refused")
    time.sleep(4 * s.reload_interval_s)  # several more polls meet the last bad champion: it is not said again
    client.set_registered_model_alias(own.model_name, registry.CHAMPION, good)
    wait_for(lambda: reloads(scorer_env)["loaded"] == 1, f"good version {good} loaded")
    sender.join()
    after = messages(300, "after")
    produce(s.kafka_bootstrap, s.topic_transactions, after)

    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(during) + len(after))
    ids = Counter(str(v["tx_id"]) for v in got.values)
    assert len(ids) == len(during) + len(after) and max(ids.values()) == 1, "every transaction scored once"
    assert {(v["model_version"], v["threshold"]) for v in got.values} == {("1", 0.5), (good, 0.4)}
    assert {v["model_version"] for v in got.values if str(v["tx_id"]).startswith("after-")} == {good}
    assert reloads(scorer_env) == {"loaded": 1.0, "unreachable": 0.0, "unusable": float(len(bad))}
    log = scorer.log.read_text()
    for kind, version in bad.items():
        said = [
            line
            for line in log.splitlines()
            if f"new champion unusable, not loaded: {own.model_name} version {version}: " in line
        ]
        assert len(said) == 1, f"{kind}: said {len(said)} times"
        assert BAD_VERSIONS[kind] in said[0] and said[0].endswith("; scoring on with version 1")
    assert "registry unreachable" not in log and "Traceback" not in log
    assert scorer.stop() == 0


def test_a_fresh_worker_starts_on_the_last_good_version_when_the_champion_is_bad(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], own: Settings, tmp_path: Path
) -> None:
    s = scorer_env.settings
    register_model(own, rounds=60, threshold=0.4, tmp=tmp_path)  # promoted: it remembers version 1
    spoil(own, "2", "corrupt model file")
    scorer = start_scorer()
    assert scorer.wait_ready()["model_version"] == "1"
    sent = messages(500, "fallback")
    produce(s.kafka_bootstrap, s.topic_transactions, sent)
    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(sent))
    assert len({v["tx_id"] for v in got.values}) == len(sent)
    assert {(v["model_version"], v["threshold"]) for v in got.values} == {("1", 0.5)}
    wait_for(lambda: reloads(scorer_env)["unusable"] == 1, "the bad champion counted")
    log = scorer.log.read_text()
    (warning,) = [line for line in log.splitlines() if "the last good champion" in line]
    assert f"champion unusable: {own.model_name} version 2: " in warning and "scoring with version 1" in warning
    assert BAD_VERSIONS["corrupt model file"] in warning
    assert "Traceback" not in log
    assert scorer.stop() == 0


def test_a_fresh_worker_with_no_usable_version_exits_with_one_line(scorer_env: ScorerEnv, tmp_path: Path) -> None:
    own = own_registry(scorer_env, tmp_path / "registry")
    register_model(own, rounds=40, threshold=0.5, tmp=tmp_path)
    spoil(own, "1", "nan threshold")
    done = run_momoguard("serve", env=scorer_env.env, timeout=180)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no usable model: momoguard-fraud version 1: ")
    assert BAD_VERSIONS["nan threshold"] in last and last.endswith("no earlier champion is usable")


def test_a_champion_trained_on_account_state_is_refused_while_serving_and_at_start(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess], own: Settings, tmp_path: Path
) -> None:
    s = scorer_env.settings
    stateful = register_model(own, rounds=40, threshold=0.5, tmp=tmp_path, champion=False, feature_set="account_state")
    scorer = start_scorer()
    assert scorer.wait_ready()["model_version"] == "1"
    registry.make_champion(own, stateful, "a model this scorer cannot serve")
    wait_for(lambda: reloads(scorer_env).get("unusable") == 1, "the account_state champion refused")
    sent = messages(300, "stateful")
    produce(s.kafka_bootstrap, s.topic_transactions, sent)
    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=len(sent))
    assert {v["model_version"] for v in got.values} == {"1"}  # scoring went on with the model it had
    (said,) = [line for line in scorer.log.read_text().splitlines() if "new champion unusable" in line]
    assert f"{own.model_name} version {stateful} uses the account_state feature set" in said
    assert scorer.stop() == 0
    # A fresh worker falls back to the last good champion, as for any version it cannot use.
    fresh = start_scorer()
    assert fresh.wait_ready()["model_version"] == "1"
    assert fresh.stop() == 0


def test_a_fresh_worker_with_only_an_account_state_model_exits_with_one_line(
    scorer_env: ScorerEnv, tmp_path: Path
) -> None:
    own = own_registry(scorer_env, tmp_path / "registry")
    register_model(own, rounds=40, threshold=0.5, tmp=tmp_path, feature_set="account_state")
    done = run_momoguard("serve", env=scorer_env.env, timeout=180)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: no usable model: {own.model_name} version 1 uses the account_state feature set")
    assert last.endswith("no earlier champion is usable")
