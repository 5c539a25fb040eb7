"""The replay report's arithmetic on known inputs: join, duplicates, percentiles, confusion, amounts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from replay.report import Confusion, Received, Sent, build_report, latency_series, percentile


@pytest.mark.parametrize("q", [0, 1, 37.5, 50, 95, 99, 100])
def test_percentile_matches_numpy(q: float) -> None:
    values = [float(v) for v in np.random.default_rng(3).exponential(10, 1001)]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_known_values() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], 101)


def test_report_joins_on_tx_id() -> None:
    sent = [
        Sent("a", 100.000, 1, 500.0),  # fraud, blocked -> tp
        Sent("b", 100.010, 1, 1500.0),  # fraud, allowed -> fn
        Sent("c", 100.020, 0, 10.0),  # genuine, blocked -> fp
        Sent("d", 100.030, 0, 20.0),  # genuine, allowed -> tn
        Sent("e", 100.040, 0, 30.0),  # never answered -> missing
    ]
    received = [
        Received("a", 100.010, "block", "3"),
        Received("b", 100.050, "allow", "3"),
        Received("c", 100.060, "block", "4"),
        Received("a", 100.300, "block", "3"),  # duplicate: counted, latency not
        Received("d", 100.130, "allow", "4"),
        Received("zzz", 100.100, "block", "4"),  # not ours: ignored
    ]
    report = build_report(sent, received, offered_rate_tps=100.0, send_seconds=0.05)
    assert report.sent == 5
    assert report.verdicts == 5 and report.duplicates == 1 and report.missing == 1
    assert report.confusion == Confusion(tp=1, fp=1, tn=1, fn=1)
    assert sum(dataclasses.astuple(report.confusion)) + report.missing == report.sent
    assert report.precision == 0.5 and report.recall == 0.5
    assert report.fraud_amount_recall == pytest.approx(500 / 2000)
    assert report.model_versions == {"3": 2, "4": 2}
    latencies = [10.0, 40.0, 40.0, 100.0]
    assert report.latency_ms.p50 == pytest.approx(40.0)
    assert report.latency_ms.max == pytest.approx(100.0)
    assert report.latency_ms.p99 == pytest.approx(float(np.percentile(latencies, 99)))
    assert report.offered_rate_tps == 100.0 and report.achieved_rate_tps == pytest.approx(100.0)


def test_report_counts_review_list_and_late_verdicts() -> None:
    sent = [
        Sent("a", 1.0, 1, 100.0),  # fraud, reviewed: a miss for the confusion, caught with review
        Sent("b", 1.0, 1, 100.0),  # fraud, blocked by a list entry
        Sent("c", 1.0, 1, 100.0),  # fraud, allowed
        Sent("d", 1.0, 0, 100.0),  # genuine, reviewed, late
    ]
    received = [
        Received("a", 1.1, "review", "1"),
        Received("b", 1.1, "block", "1", decided_by="list"),
        Received("c", 1.1, "allow", "1"),
        Received("d", 2.0, "review", "1", late=True),
        Received("d", 2.5, "allow", "1"),  # a duplicate: only the first verdict counts
    ]
    report = build_report(sent, received, offered_rate_tps=None, send_seconds=1.0)
    assert report.decisions == {"allow": 1, "review": 2, "block": 1}
    assert report.confusion == Confusion(tp=1, fp=0, tn=1, fn=2), "review is not block"
    assert report.recall == pytest.approx(1 / 3) and report.recall_with_review == pytest.approx(2 / 3)
    assert (report.decided_by_list, report.late) == (1, 1)
    assert report.to_json()["decisions"] == {"allow": 1, "review": 2, "block": 1}


def test_report_without_labels_or_verdicts() -> None:
    report = build_report([Sent("x", 1.0, None, 5.0)], [], offered_rate_tps=None, send_seconds=0.0)
    assert report.missing == 1 and report.precision is None and report.recall is None
    assert report.fraud_amount_recall is None and report.achieved_rate_tps is None
    assert math.isnan(report.latency_ms.p50)


def test_latency_series_in_send_order() -> None:
    sent = [Sent("a", 10.0, 0, 1.0), Sent("b", 11.0, 0, 1.0)]
    received = [Received("b", 11.5, "allow", "1"), Received("a", 10.2, "allow", "1"), Received("a", 12.0, "allow", "1")]
    xs, ys = latency_series(sent, received)
    assert xs == [0.0, 1.0] and ys == pytest.approx([200.0, 500.0])


def test_the_json_report_has_every_figure_and_no_nan() -> None:
    report = build_report([Sent("x", 1.0, None, 5.0)], [], offered_rate_tps=None, send_seconds=0.0)
    figures = report.to_json()
    assert figures["latency_ms"] == {"p50": None, "p95": None, "p99": None, "max": None}
    assert figures["confusion"] == {"tp": 0, "fp": 0, "tn": 0, "fn": 0} and figures["missing"] == 1
    assert set(figures) >= {"sent", "verdicts", "duplicates", "precision", "recall", "fraud_amount_recall", "input"}
