"""The desk's lists on the real broker: `momoguard lists` against running workers, restarts, expiry, bad records."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from confluent_kafka import Producer

from core.settings import Settings
from schemas.verdict import VERDICT, Verdict
from stream_app.process import get_json
from tests.support.cli import run_momoguard
from tests.support.harness import (
    ScorerEnv,
    ScorerProcess,
    collect,
    messages,
    offline_scores,
    produce,
    produce_in_background,
    transactions,
    until,
)
from tests.support.waiting import scorer_metric

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def account() -> str:
    """A fresh account id of the accepted format (C and digits)."""
    return f"C9{uuid.uuid4().int % 10**12:012d}"


def lists(scorer_env: ScorerEnv, *args: str) -> str:
    done = run_momoguard("lists", *args, env=scorer_env.env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def entries_on(web: str) -> int:
    """How many list entries the worker behind `web` holds (-1 while it does not answer)."""
    try:
        return int(get_json(f"{web}/ready")["lists"]["entries"])
    except (OSError, ValueError, KeyError):
        return -1


def involving(txs: list[dict[str, object]], **names: str) -> list[dict[str, object]]:
    return [{**tx, **names} for tx in txs]


def verdicts_by_id(s: Settings, expect: int) -> dict[str, Verdict]:
    got = collect(s.kafka_bootstrap, s.topic_verdicts, expect=expect)
    found = {str(v["tx_id"]): VERDICT.validate_python(v) for v in got.values}
    assert len(found) == expect, f"{len(found)} verdicts of {expect}"
    return found


def two_workers(scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]) -> list[str]:
    """Start two workers of one group; their web addresses once both hold partitions."""
    first = start_scorer()
    start_scorer("--worker-index", "1")
    first.wait_ready()
    webs = [f"http://127.0.0.1:{scorer_env.settings.web_port + i}" for i in (0, 1)]

    def both_assigned() -> bool:
        try:
            return all(get_json(f"{web}/ready").get("partitions") for web in webs)
        except (OSError, ValueError):
            return False

    until(both_assigned, "both workers hold partitions", timeout=120)
    return webs


def test_a_block_entry_applies_on_both_workers_while_transactions_flow_and_remove_restores_the_model(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]
) -> None:
    s = scorer_env.settings
    webs = two_workers(scorer_env, start_scorer)
    flow = transactions(2000, "flow")
    sender = produce_in_background(s.kafka_bootstrap, s.topic_transactions, messages(flow), 200)
    mule = account()
    try:
        said = lists(scorer_env, "add", "--block", "--account", mule, "--reason", "SIM swap reported", "--by", "desk")
        assert said.startswith(f"block {mule} as sender and recipient with no expiry: SIM swap reported")
        until(lambda: all(entries_on(web) == 1 for web in webs), "every worker holds the entry")
        # The next transactions: to the mule from 40 senders (their keys spread over every partition, so over
        # both workers), and from the mule.
        to_mule = [{**tx, "nameOrig": f"C5{i:06d}", "nameDest": mule} for i, tx in enumerate(transactions(40, "to"))]
        from_mule = involving(transactions(10, "from"), nameOrig=mule)
        produce(s.kafka_bootstrap, s.topic_transactions, messages(to_mule + from_mule))
        until(
            lambda: all(scorer_metric(web, "momoguard_list_decisions_total", action="block") > 0 for web in webs),
            "both workers decided by the entry",
        )
        lists(scorer_env, "remove", "--account", mule)
        until(lambda: all(entries_on(web) == 0 for web in webs), "every worker dropped the entry")
        after = involving(transactions(20, "after"), nameDest=mule)
        produce(s.kafka_bootstrap, s.topic_transactions, messages(after))
    finally:
        sender.join()
    found = verdicts_by_id(s, len(flow) + len(to_mule) + len(from_mule) + len(after))
    for tx in to_mule + from_mule:
        verdict = found[str(tx["tx_id"])]
        assert (verdict.decision, verdict.decided_by) == ("block", "list")
        hit = verdict.list_entry
        assert hit is not None and (hit.account, hit.action, hit.reason, hit.added_by) == (
            mule,
            "block",
            "SIM swap reported",
            "desk",
        )
        assert hit.side == ("orig" if tx["nameOrig"] == mule else "dest")
    for tx in flow + after:
        verdict = found[str(tx["tx_id"])]
        assert verdict.decided_by == "model" and verdict.list_entry is None
        assert verdict.decision == ("block" if verdict.score >= verdict.threshold else "allow")


def test_an_allow_entry_beats_the_model_entries_survive_a_restart_and_an_expired_one_stops_applying(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]
) -> None:
    s = scorer_env.settings
    candidates = transactions(3000, "pick")
    scores = offline_scores(s, candidates, "1")
    blocked_rows = [tx for tx in candidates if scores[str(tx["tx_id"])] >= 0.5][:10]
    assert blocked_rows, "the sample has transactions the champion blocks"
    customer, mule = account(), account()
    # Written before any worker runs: read at start.
    lists(scorer_env, "add", "--allow", "--account", customer, "--direction", "orig", "--reason", "call-back OK")
    scorer = start_scorer()
    scorer.wait_ready()
    lists(scorer_env, "add", "--block", "--account", mule, "--ttl", "20s", "--reason", "compromised agent")
    until(lambda: entries_on(scorer.web) == 2, "the worker holds both entries")

    def batch(run: str) -> dict[str, list[dict[str, object]]]:
        return {
            "customer": [{**tx, "tx_id": f"{run}-c{i}", "nameOrig": customer} for i, tx in enumerate(blocked_rows)],
            "mule": involving(transactions(10, f"{run}-m"), nameDest=mule),
            "customer_to_mule": involving(transactions(5, f"{run}-cm"), nameOrig=customer, nameDest=mule),
        }

    first = batch("first")
    produce(s.kafka_bootstrap, s.topic_transactions, messages([tx for part in first.values() for tx in part]))
    found = verdicts_by_id(s, sum(map(len, first.values())))
    for tx in first["customer"]:
        verdict = found[str(tx["tx_id"])]
        assert verdict.score >= verdict.threshold, "the model blocks it"
        assert (verdict.decision, verdict.decided_by) == ("allow", "list"), "the allow entry lets it through"
    shown = json.loads(lists(scorer_env, "show", "--json"))
    by_account = {e["account"]: e for e in shown["entries"]}
    assert set(by_account) == {customer, mule} and shown["topic"] == s.topic_lists
    expires = datetime.fromisoformat(by_account[mule]["expires_at"])
    for tx in first["mule"] + first["customer_to_mule"]:
        verdict = found[str(tx["tx_id"])]
        # Decided by the mule's entry while it is in force (a blocked recipient beats an allowed sender),
        # by the model (or the customer's entry) once it has expired: the verdict's own time tells which.
        if verdict.scored_at < expires:
            assert (verdict.decision, verdict.decided_by) == ("block", "list")
            assert verdict.list_entry is not None and verdict.list_entry.account == mule
        elif tx["nameOrig"] == customer:
            assert verdict.list_entry is not None and verdict.list_entry.account == customer
        else:
            assert verdict.decided_by == "model"

    assert scorer.stop(signal.SIGTERM) == 0
    restarted = start_scorer()
    restarted.wait_ready()
    until(lambda: entries_on(restarted.web) == 2, "the restarted worker read both entries back")
    until(lambda: time.time() > expires.timestamp() + 0.5, "the mule's entry expired", timeout=60)
    second = batch("second")
    produce(s.kafka_bootstrap, s.topic_transactions, messages([tx for part in second.values() for tx in part]))
    found = verdicts_by_id(s, sum(map(len, first.values())) + sum(map(len, second.values())))
    for tx in second["customer"] + second["customer_to_mule"]:
        verdict = found[str(tx["tx_id"])]
        assert (verdict.decision, verdict.decided_by) == ("allow", "list"), "survived the restart"
        assert verdict.list_entry is not None and verdict.list_entry.account == customer
    for tx in second["mule"]:
        verdict = found[str(tx["tx_id"])]
        assert verdict.decided_by == "model" and verdict.list_entry is None, "expired: the model decides"
    shown = json.loads(lists(scorer_env, "show", "--json"))
    assert {e["account"]: e["in_force"] for e in shown["entries"]} == {customer: True, mule: False}
    table = lists(scorer_env, "show")
    assert "(expired)" in table and customer in table and "call-back OK" in table
    assert restarted.stop() == 0


def test_a_malformed_record_on_the_lists_topic_is_logged_and_ignored(
    scorer_env: ScorerEnv, start_scorer: Callable[..., ScorerProcess]
) -> None:
    s = scorer_env.settings
    blocked = account()
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "acks": "all"})
    # (A record without a key never gets there: the broker refuses it on a compacted topic.)
    producer.produce(s.topic_lists, key=b"C1", value=b'{"account": "C1"}')  # before the worker starts
    producer.produce(s.topic_lists, key=b"C42", value=b"{not json")
    assert producer.flush(30) == 0
    scorer = start_scorer()
    scorer.wait_ready()
    entry = json.dumps(
        {
            "account": blocked,
            "action": "block",
            "direction": "orig",
            "reason": "written by a tool",
            "added_by": "tool",
            "added_at": "2026-12-01T12:00:00Z",
        }
    ).encode()
    producer.produce(s.topic_lists, key=b"C43", value=entry)  # the key is not the entry's account
    producer.produce(s.topic_lists, key=blocked.encode(), value=entry.replace(b'"block"', b'"maybe"'))
    producer.produce(s.topic_lists, key=b"\xff\xfe", value=None)
    producer.produce(s.topic_lists, key=blocked.encode(), value=entry)  # and a good one after them
    assert producer.flush(30) == 0
    until(lambda: entries_on(scorer.web) == 1, "the good entry applied")
    malformed = "momoguard_list_records_total"
    until(lambda: scorer_metric(scorer.web, malformed, outcome="malformed") == 5, "five malformed records counted")
    assert scorer_metric(scorer.web, malformed, outcome="applied") == 1
    txs = involving(transactions(5, "tool"), nameOrig=blocked)
    produce(s.kafka_bootstrap, s.topic_transactions, messages(txs))
    found = verdicts_by_id(s, len(txs))
    assert {(v.decision, v.decided_by) for v in found.values()} == {("block", "list")}
    assert scorer.health()["status"] == "alive"
    assert scorer.stop() == 0
    log = scorer.log.read_text(errors="replace")
    assert log.count("lists: ignored a malformed record") == 5 and "Traceback" not in log


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("add", "--block", "--account", "X123", "--reason", "r"), "--account 'X123' is not an account id"),
        (("add", "--block", "--allow", "--account", "C1", "--reason", "r"), "give exactly one of --block, --allow"),
        (("add", "--block", "--account", "C1", "--reason", "r", "--ttl", "soon"), "--ttl 'soon' is not a duration"),
        (("add", "--block", "--account", "C1", "--reason", "r", "--direction", "up"), "--direction 'up' is not"),
        (("add", "--block", "--account", "C1", "--reason", " "), "--reason"),
        (("remove", "--account", "C404"), "C404 is not on the lists"),
    ],
)
def test_bad_list_commands_get_one_line_errors(scorer_env: ScorerEnv, args: tuple[str, ...], says: str) -> None:
    done = run_momoguard("lists", *args, env=scorer_env.env, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and says in last, done.stderr[-2000:]
