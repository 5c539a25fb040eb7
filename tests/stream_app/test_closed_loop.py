"""What follows the champion's scoring of a batch, without Kafka: log records, shadow verdicts, the drift window."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from core.settings import Settings
from registry import LoadedModel
from schemas.drift import reference_from
from schemas.features import build_features, feature_names
from schemas.scored import read_scored_message
from schemas.verdict import parse_verdict
from stream_app.closed_loop import ClosedLoop
from stream_app.decisions import DecisionPolicy
from stream_app.drift import SLICES, DriftMonitor
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import BatchProcessor, Incoming, Record
from stream_app.scoring import Scorer
from tests.support.messages import GOOD
from tests.support.models import sample_frame, sample_rows, train_booster
from tests.support.waiting import metric


def model(version: str, rounds: int, with_reference: bool = False) -> LoadedModel:
    booster = train_booster(rounds)
    reference = None
    if with_reference:
        x = build_features(sample_frame())
        reference = reference_from(x, feature_names(), booster.predict(x))
    return LoadedModel("m", version, 0.5, "pre_settlement", booster, feature_names(), reference=reference)


class Broken(Scorer):
    """A challenger whose booster fails on every batch (a version that loads but cannot score this input)."""

    def score(self, transactions, now=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("challenger broke")


def batch(n: int) -> list[Incoming]:
    return [
        Incoming("transactions", 0, i, b"C1", orjson.dumps({**GOOD, "tx_id": f"t{i}"}), None, 1.0) for i in range(n)
    ]


def processor_with(loop: ClosedLoop, metrics: ScorerMetrics, champion: LoadedModel) -> BatchProcessor:
    return BatchProcessor(Scorer(champion), metrics, "verdicts", "dlq", max_bytes=2048, follow=loop.follow)


def records_of(processor: BatchProcessor, loop: ClosedLoop, incoming: list[Incoming]) -> list[Record]:
    """Everything a batch makes, as the agent produces it: verdicts, the closed loop's records, the log's rows."""
    outcome = processor.process(incoming)
    records = outcome.records + processor.follow_up(outcome)
    taken = loop.take_log(force=True)
    return records + (taken[0] if taken else [])


def test_a_batch_brings_its_log_records_and_one_shadow_verdict_per_transaction() -> None:
    metrics, champion = ScorerMetrics(), model("1", 20)
    loop = ClosedLoop(Settings(topic_scored="scored", topic_shadow="shadow"), metrics, champion)
    loop.shadow.use(Scorer(model("2", 5)))
    records = records_of(processor_with(loop, metrics, champion), loop, batch(30))
    by_topic = {t: [r for r in records if r.topic == t] for t in ("verdicts", "shadow", "scored")}
    assert [parse_verdict(r.value).model_version for r in by_topic["verdicts"]] == ["1"] * 30
    assert [parse_verdict(r.value).tx_id for r in by_topic["shadow"]] == [f"t{i}" for i in range(30)]
    assert {parse_verdict(r.value).model_version for r in by_topic["shadow"]} == {"2"}
    assert all(r.source is None for r in by_topic["shadow"] + by_topic["scored"]), "never dead-lettered"
    (scored,) = by_topic["scored"]
    table = read_scored_message(scored.value)
    assert table.num_rows == 30 and table["shadow_model_version"].cast(pa.string()).to_pylist() == ["2"] * 30
    assert metric(_text(metrics), "momoguard_shadow_decisions_total") == 30
    assert loop.shadow.view()["shadowed"] == 30


def test_shadow_counts_and_logs_the_three_decisions_each_model_would_act_on() -> None:
    # The champion has the review tier on (everything under its block threshold goes to review); the challenger,
    # the same booster with no review threshold, allows those: they agree only on the blocks.
    booster = train_booster(20)
    champion = LoadedModel("m", "1", 0.5, "pre_settlement", booster, feature_names(), review_threshold=1e-9)
    challenger = LoadedModel("m", "2", 0.5, "pre_settlement", booster, feature_names())
    metrics, policy = ScorerMetrics(), DecisionPolicy(review_tier=True)
    loop = ClosedLoop(Settings(topic_scored="scored", topic_shadow="shadow"), metrics, champion)
    loop.shadow.use(Scorer(challenger, policy=policy))
    rows = [r for r in sample_rows() if r["isFraud"] == 1][:20] + [r for r in sample_rows() if r["isFraud"] == 0][:80]
    incoming = [
        Incoming("transactions", 0, i, b"C1", orjson.dumps({**row, "tx_id": f"t{i}"}), None, 1.0)
        for i, row in enumerate(rows)
    ]
    processor = BatchProcessor(Scorer(champion, policy=policy), metrics, "verdicts", "dlq", 4096, follow=loop.follow)
    records = records_of(processor, loop, incoming)
    verdicts = [parse_verdict(r.value) for r in records if r.topic == "verdicts"]
    blocks = sum(v.decision == "block" for v in verdicts)
    assert 0 < blocks < len(rows) and all(v.decision in ("block", "review") for v in verdicts)
    text = _text(metrics)
    assert metric(text, "momoguard_shadow_decisions_total", champion="block", challenger="block") == blocks
    assert metric(text, "momoguard_shadow_decisions_total", champion="review", challenger="allow") == len(rows) - blocks
    assert loop.shadow.view()["agreement"] == blocks / len(rows)
    (scored,) = [r for r in records if r.topic == "scored"]
    table = read_scored_message(scored.value)
    assert table["decision"].cast(pa.string()).to_pylist() == [v.decision for v in verdicts]
    assert set(table["shadow_decision"].cast(pa.string()).to_pylist()) == {"block", "allow"}


def test_a_failing_challenger_costs_only_its_shadow_verdicts() -> None:
    metrics, champion = ScorerMetrics(), model("1", 20)
    loop = ClosedLoop(Settings(topic_scored="scored", topic_shadow="shadow"), metrics, champion)
    loop.shadow.use(Broken(model("2", 5)))
    records = records_of(processor_with(loop, metrics, champion), loop, batch(10))
    assert [r.topic for r in records].count("verdicts") == 10
    assert [r.topic for r in records].count("shadow") == 0
    (scored,) = [r for r in records if r.topic == "scored"]
    assert read_scored_message(scored.value)["shadow_score"].null_count == 10
    assert metric(_text(metrics), "momoguard_closed_loop_errors_total", step="shadow") == 1


def test_the_log_gathers_small_batches_and_their_fetches_wait_for_its_message() -> None:
    metrics, champion = ScorerMetrics(), model("1", 20)
    loop = ClosedLoop(Settings(topic_scored="scored", scored_log_linger_ms=10_000), metrics, champion)
    processor = processor_with(loop, metrics, champion)
    acknowledged: list[int] = []
    for fetch in range(3):  # three small fetches: nothing is due yet
        outcome = processor.process(batch(5))
        assert processor.follow_up(outcome) == []
        loop.after_logged(lambda fetch=fetch: acknowledged.append(fetch))
        assert loop.take_log() is None
    assert loop.log is not None and loop.log.rows == 15
    taken = loop.take_log(force=True)  # a revoke or a stop
    assert taken is not None and acknowledged == []
    records, logged = taken
    (message,) = records
    assert read_scored_message(message.value).num_rows == 15
    logged()  # the broker acknowledged the message
    assert acknowledged == [0, 1, 2]
    assert metric(_text(metrics), "momoguard_scored_log_records_total") == 15
    loop.after_logged(lambda: acknowledged.append(3))
    assert acknowledged[-1] == 3, "nothing waiting: acknowledged at once"


def test_the_log_is_due_at_a_message_of_rows_or_after_its_linger() -> None:
    metrics, champion = ScorerMetrics(), model("1", 20)
    rows = ClosedLoop(Settings(topic_scored="scored", scored_log_linger_ms=10_000), metrics, champion)
    processor_rows = processor_with(rows, metrics, champion)
    processor_rows.follow_up(processor_rows.process(batch(999)))
    assert rows.take_log() is None
    processor_rows.follow_up(processor_rows.process(batch(1)))
    assert rows.take_log() is not None, "1,000 rows: a message's worth"
    lingering = ClosedLoop(Settings(topic_scored="scored", scored_log_linger_ms=0), metrics, champion)
    processor = processor_with(lingering, metrics, champion)
    processor.follow_up(processor.process(batch(2)))
    assert lingering.take_log() is not None, "linger 0: every fetch has its own message"


def test_log_records_that_cannot_be_built_cost_only_the_log_never_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    import stream_app.scored_log

    def broken(*_: object) -> list[bytes]:
        raise RuntimeError("arrow broke")

    metrics, champion = ScorerMetrics(), model("1", 20)
    loop = ClosedLoop(Settings(topic_scored="scored"), metrics, champion)
    processor = processor_with(loop, metrics, champion)
    processor.follow_up(processor.process(batch(4)))
    acknowledged: list[bool] = []
    loop.after_logged(lambda: acknowledged.append(True))
    monkeypatch.setattr(stream_app.scored_log, "scored_messages", broken)
    taken = loop.take_log(force=True)
    assert taken is not None and taken[0] == []
    taken[1]()
    assert acknowledged == [True]
    assert metric(_text(metrics), "momoguard_closed_loop_errors_total", step="log") == 1


def test_the_drift_window_forgets_slices_older_than_it_and_a_new_champion_starts_afresh() -> None:
    champion = model("1", 20, with_reference=True)
    assert champion.reference is not None
    now = [0.0]
    metrics = ScorerMetrics()
    monitor = DriftMonitor(metrics, window_s=300.0, min_transactions=100, clock=lambda: now[0])
    monitor.use(champion.reference)
    x = build_features(sample_frame())
    scores = champion.booster.predict(x)
    monitor.observe(x, scores)
    assert max(monitor.refresh().values()) < 1e-9 and monitor.window_transactions == x.shape[0]
    now[0] = 300.0 / SLICES * (SLICES - 1)  # still within the window
    assert monitor.refresh() and monitor.window_transactions == x.shape[0]
    now[0] = 301.0  # the slice it was counted in has left the window
    assert monitor.refresh() == {} and monitor.window_transactions == 0
    assert metric(_text(metrics), "momoguard_drift_psi") == 0
    monitor.observe(x[:50], scores[:50])
    assert monitor.refresh() == {}, "fewer than min_transactions: no PSI exported"
    monitor.use(None)
    monitor.observe(x, scores)
    assert monitor.refresh() == {} and monitor.view()["watched"] is False


def _text(metrics: ScorerMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()
