"""`momoguard label` and `log-sink` as analysts and operators run them: bad input is one line, nothing sent."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.label import parse_label
from tests.support.cli import run_momoguard
from tests.support.harness import ScorerEnv, collect


def one_error(done: object) -> str:
    stderr: str = done.stderr  # type: ignore[attr-defined]
    assert done.returncode != 0 and "Traceback" not in stderr, stderr  # type: ignore[attr-defined]
    errors = [line for line in stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.mark.parametrize(
    ("args", "csv", "said"),
    [
        (["T1"], None, "say --fraud or --genuine"),
        (["T1", "--fraud", "--genuine", "--source", "analyst"], None, "say --fraud or --genuine"),
        (["T1", "--fraud"], None, "say who labels it: --source analyst|chargeback|customer_report"),
        (["T1", "--fraud", "--source", "rumour"], None, "the label: source: Input should be 'analyst'"),
        ([], None, "give TX_ID with --fraud or --genuine, or --csv FILE"),
        (["--csv", "missing.csv"], None, "cannot read"),
        (["--csv", "labels.csv"], "tx_id,verdict\nT1,1\n", "no column is_fraud in the header"),
        (["--csv", "labels.csv"], "tx_id,is_fraud,colour\nT1,1,red\n", "unknown column(s) colour"),
        (["--csv", "labels.csv"], "tx_id,is_fraud\nT1,1\n", "line 2: no source"),
        (["--csv", "labels.csv", "--source", "analyst"], "tx_id,is_fraud\nT1,1\nT2,maybe\nT3,\n",
         "line 3: is_fraud 'maybe' is not 1/0, true/false or fraud/genuine (2 bad rows of 3; nothing was published)"),
        (["--csv", "labels.csv", "--source", "analyst"], "tx_id,is_fraud\n", "no labels in it"),
    ],
)  # fmt: skip
def test_bad_labels_are_refused_in_one_line_and_none_is_published(
    args: list[str], csv: str | None, said: str, tmp_path: Path
) -> None:
    if csv is not None:
        (tmp_path / "labels.csv").write_text(csv)
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
    # A broker that is not there: refused before anything would be sent.
    done = run_momoguard("label", *args, env={"MOMOGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, cwd=tmp_path)
    assert said in one_error(done)


def test_a_broker_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    env = {"MOMOGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:1", "MOMOGUARD_LOG_DIR": str(tmp_path / "log")}
    done = run_momoguard("label", "T1", "--fraud", "--source", "analyst", env=env)
    assert "Kafka at 127.0.0.1:1 did not answer" in one_error(done)


@pytest.mark.kafka
def test_one_label_goes_to_the_labels_topic_and_an_unknown_tx_id_is_kept_and_named(scorer_env: ScorerEnv) -> None:
    s = scorer_env.settings
    done = run_momoguard(
        "label", "never-seen", "--genuine", "--source", "customer_report", "--note", "refund", "--json",
        env=scorer_env.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = orjson.loads(done.stdout)
    assert said == {"labelled": 1, "fraud": 0, "genuine": 1, "topic": s.topic_labels, "unknown_tx_ids": ["never-seen"]}
    got = collect(s.kafka_bootstrap, s.topic_labels, expect=1, decode=False)
    assert len(got.raw) == 1 and got.keys == [b"never-seen"]
    label = parse_label(got.raw[0])
    assert (label.tx_id, label.is_fraud, label.source, label.note) == ("never-seen", False, "customer_report", "refund")


def test_the_sink_refuses_a_log_folder_it_cannot_use_in_one_line(tmp_path: Path) -> None:
    env = {"MOMOGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    said = one_error(run_momoguard("log-sink", "--log-dir", "s3://bucket/log", env=env))
    assert "expected a local path or a file:// URL" in said
    taken = tmp_path / "a-file"
    taken.write_text("not a folder\n")
    said = one_error(run_momoguard("log-sink", "--log-dir", str(taken / "log"), env=env))
    assert f"cannot write the log in {taken / 'log'}" in said and "the next start reads it again" in said
