"""The closed loop's contract: the scored-transaction record, the label, the drift reference and its PSI."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from schemas.drift import DriftReference, bin_counts, edge_grid, psi, reference_from
from schemas.features import build_features, feature_names
from schemas.json_schema import SCHEMA_DIR
from schemas.label import label_bytes, parse_label
from schemas.scored import (
    ROWS_PER_MESSAGE,
    ModelColumns,
    ScoredRows,
    ShadowColumns,
    read_scored_message,
    scored_messages,
)
from schemas.transaction import Transaction
from tests.support.models import sample_frame, sample_rows


def test_a_scored_batch_reads_back_row_for_row_with_its_features_model_and_shadow() -> None:
    rows = sample_rows()[:2_500]
    txs = [Transaction.model_validate({**row, "tx_id": f"t{i}"}) for i, row in enumerate(rows)]
    frame = sample_frame().head(2_500)
    x = build_features(frame)
    scores = np.linspace(0, 1, len(txs))
    blocked = scores >= 0.5
    reviewed = (scores >= 0.4) & ~blocked
    model = ModelColumns("momoguard-fraud", "3", "pre_settlement", 0.5)
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    event_times = np.full(len(txs), at.timestamp() - 1.5)
    event_times[7] = np.nan
    shadow = ShadowColumns("4", scores[::-1].copy(), scores[::-1] >= 0.3, np.zeros(len(txs), dtype=bool))
    raw = scored_messages([ScoredRows(txs, x, scores, blocked, reviewed, model, at, event_times, shadow)])
    assert len(raw) == 3 and ROWS_PER_MESSAGE == 1000
    table = pa.concat_tables([read_scored_message(m) for m in raw])
    assert table["tx_id"].to_pylist() == [t.tx_id for t in txs]
    assert np.array_equal(np.vstack(table["features"].to_pylist()), x)
    assert table["amount"].to_pylist() == [t.amount for t in txs]
    assert table["type"].cast(pa.string()).to_pylist() == [t.type.value for t in txs]
    assert table["nameDest"].to_pylist() == [t.name_dest for t in txs]
    assert table["decision"].cast(pa.string()).to_pylist() == [
        "block" if s >= 0.5 else "review" if s >= 0.4 else "allow" for s in scores
    ]
    assert set(table["model_version"].cast(pa.string()).to_pylist()) == {"3"}
    assert table["shadow_decision"].cast(pa.string()).to_pylist() == [
        "block" if s >= 0.3 else "allow" for s in scores[::-1]
    ]
    assert table["event_time"][7].as_py() is None and table["scored_at"][0].as_py() == at


def test_consecutive_batches_of_one_model_share_messages_in_order_and_a_new_version_starts_its_own() -> None:
    txs = [Transaction.model_validate({**row, "tx_id": f"t{i}"}) for i, row in enumerate(sample_rows()[:1_300])]
    x = build_features(sample_frame().head(1_300))
    scores = np.linspace(0, 1, len(txs))
    v3, v4 = (ModelColumns("momoguard-fraud", v, "pre_settlement", 0.5) for v in ("3", "4"))
    at = [datetime(2026, 12, 1, 10, 0, second, tzinfo=UTC) for second in range(4)]
    cuts = [0, 7, 907, 1_200, 1_300]  # a small fetch, a large one, a third: one version; then another version

    def part(i: int, model: ModelColumns) -> ScoredRows:
        rows = slice(cuts[i], cuts[i + 1])
        n = cuts[i + 1] - cuts[i]
        none = np.zeros(n, dtype=bool)
        return ScoredRows(txs[rows], x[rows], scores[rows], scores[rows] >= 0.5, none, model, at[i], np.full(n, 1.0))

    nothing = np.zeros(0)
    empty = ScoredRows([], x[:0], nothing, nothing, nothing, v3, at[0], nothing)  # a fetch of dead letters only
    raw = scored_messages([part(0, v3), part(1, v3), empty, part(2, v3), part(3, v4)])
    tables = [read_scored_message(m) for m in raw]
    assert [t.num_rows for t in tables] == [1000, 200, 100], "1,200 rows of version 3 in two messages, then v4"
    table = pa.concat_tables(tables)
    assert table["tx_id"].to_pylist() == [t.tx_id for t in txs]
    assert np.array_equal(np.vstack(table["features"].to_pylist()), x)
    assert table["model_version"].cast(pa.string()).to_pylist() == ["3"] * 1_200 + ["4"] * 100
    expected_at = [at[i] for i in range(4) for _ in range(cuts[i + 1] - cuts[i])]
    assert table["scored_at"].to_pylist() == expected_at, "each row keeps its own batch's scoring time"
    assert table["score"].to_pylist() == scores.tolist()


@pytest.mark.parametrize("raw", [b"", b"not arrow", b"\x00" * 64])
def test_anything_else_on_the_scored_topic_is_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not an Arrow IPC stream"):
        read_scored_message(raw)


def test_an_arrow_stream_of_other_columns_is_refused() -> None:
    sink = pa.BufferOutputStream()
    table = pa.table({"tx_id": ["a"]})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    with pytest.raises(ValueError, match="columns are not the scored record's"):
        read_scored_message(sink.getvalue().to_pybytes())


def test_a_label_round_trips_and_its_json_schema_accepts_it() -> None:
    label = parse_label(b'{"tx_id": "t-1", "is_fraud": true, "source": "chargeback", '
                        b'"labelled_at": "2026-12-01T10:00:00", "note": "bank dispute"}')  # fmt: skip
    assert label.labelled_at.tzinfo is not None, "a naive time is read as UTC"
    assert parse_label(label_bytes(label)) == label
    schema = json.loads((SCHEMA_DIR / "label.schema.json").read_text())
    jsonschema.validate(json.loads(label_bytes(label)), schema)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"tx_id": "t-1", "is_fraud": true, "source": "guess", "labelled_at": "2026-12-01T10:00:00Z"}',
        b'{"tx_id": "", "is_fraud": true, "source": "analyst", "labelled_at": "2026-12-01T10:00:00Z"}',
        b'{"tx_id": "t-1", "source": "analyst", "labelled_at": "2026-12-01T10:00:00Z"}',
        b"[1, 2]",
    ],
)
def test_a_label_without_a_known_source_tx_id_or_verdict_is_refused(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_label(raw)


def test_psi_is_zero_on_the_reference_rows_and_large_when_the_amounts_shift() -> None:
    frame = sample_frame()
    x = build_features(frame)
    scores = np.clip(x[:, 0] / (x[:, 0].max() or 1), 0, 1)
    reference = reference_from(x, feature_names(), scores)
    again = DriftReference.from_dict(json.loads(json.dumps(reference.to_dict())))
    assert again == reference
    grid = edge_grid(reference.edges)
    same = bin_counts(np.column_stack([x, scores]), grid)
    assert all(psi(reference.expected[i], same[i]) == pytest.approx(0, abs=1e-12) for i in range(len(reference.inputs)))
    shifted = build_features(frame.with_columns(frame["amount"] * 3))
    amount = reference.inputs.index("amount")
    moved = bin_counts(np.column_stack([shifted, scores]), grid)
    assert psi(reference.expected[amount], moved[amount]) > 0.2
    assert "hour_of_day" not in [reference.inputs[i] for i in reference.monitored()]


@pytest.mark.parametrize(
    "stored",
    [{}, {"format": 2, "rows": 1, "inputs": [], "edges": [], "expected": []},
     {"format": 1, "rows": 1, "inputs": ["a"], "edges": [[0.5]], "expected": [[1.0]]}],
)  # fmt: skip
def test_a_drift_reference_that_is_not_one_is_refused(stored: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DriftReference.from_dict(stored)
