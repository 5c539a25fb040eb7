"""The scored-transaction record, defined once: what the scorer writes to `transactions.scored` and the log keeps.

One record per scored transaction: the transaction (PaySim columns), the feature vector the champion scored (the
very matrix the scorer built), the model (name, version, feature set, threshold), its score and decision, when
it was scored, and the challenger's score and decision when one shadowed it. On the topic, one message holds the
records of consecutive scored batches (at most ROWS_PER_MESSAGE rows) as an Arrow IPC stream: built with numpy
once per message, about a microsecond a row, where one JSON message a transaction would cost several and double
the records to produce, and one message per small fetch would cost the Arrow columns' set-up every time.
The log sink (feedback/sink.py) writes the same columns to Parquet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

import numpy as np
import pyarrow as pa

from schemas.features import FeatureError, feature_names
from schemas.transaction import TX_TYPES, Transaction
from schemas.verdict import Decision

ROWS_PER_MESSAGE = 1000
RECORD_KIND = b"scored/1"  # header `momoguard.record` of every message on the scored topic
DECISIONS: tuple[str, ...] = get_args(Decision)  # ("allow", "review", "block")

_TEXT = pa.dictionary(pa.int32(), pa.string())
_TIME = pa.timestamp("us", tz="UTC")

SCORED_SCHEMA = pa.schema(
    [
        pa.field("tx_id", pa.string(), nullable=False),
        pa.field("scored_at", _TIME, nullable=False),
        pa.field("event_time", _TIME),
        pa.field("step", pa.int32(), nullable=False),
        pa.field("type", _TEXT, nullable=False),
        pa.field("amount", pa.float64(), nullable=False),
        pa.field("nameOrig", pa.string(), nullable=False),
        pa.field("oldbalanceOrg", pa.float64(), nullable=False),
        pa.field("newbalanceOrig", pa.float64(), nullable=False),
        pa.field("nameDest", pa.string(), nullable=False),
        pa.field("oldbalanceDest", pa.float64(), nullable=False),
        pa.field("newbalanceDest", pa.float64(), nullable=False),
        pa.field("model_name", _TEXT, nullable=False),
        pa.field("model_version", _TEXT, nullable=False),
        pa.field("feature_set", _TEXT, nullable=False),
        pa.field("features", pa.list_(pa.float64()), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("threshold", pa.float64(), nullable=False),
        pa.field("decision", _TEXT, nullable=False),
        pa.field("shadow_model_version", _TEXT),
        pa.field("shadow_score", pa.float64()),
        pa.field("shadow_decision", _TEXT),
    ]
)


@dataclass(frozen=True, slots=True)
class ModelColumns:
    """Who scored the batch: the same for every row of it."""

    name: str
    version: str
    feature_set: str
    threshold: float


@dataclass(frozen=True, slots=True)
class ShadowColumns:
    """The challenger's outcome for the same rows, in order."""

    version: str
    scores: np.ndarray
    blocked: np.ndarray
    reviewed: np.ndarray


@dataclass(frozen=True, slots=True)
class ScoredRows:
    """One scored batch's rows, as the scorer holds them until they become scored-topic messages.

    `event_times` are seconds since the epoch: each transaction's event_time, or its Kafka timestamp (what the
    scorer measures latency from); NaN for none.
    """

    transactions: Sequence[Transaction]
    features: np.ndarray
    scores: np.ndarray
    blocked: np.ndarray
    reviewed: np.ndarray
    model: ModelColumns
    scored_at: datetime
    event_times: np.ndarray
    shadow: ShadowColumns | None = None

    def __len__(self) -> int:
        return len(self.transactions)

    @property
    def scored_by(self) -> tuple[ModelColumns, str | None]:
        """Who scored the rows: batches with the same can share a message."""
        return self.model, None if self.shadow is None else self.shadow.version


def scored_messages(parts: Sequence[ScoredRows]) -> list[bytes]:
    """Scored batches, in order, as scored-topic messages: Arrow IPC streams of at most ROWS_PER_MESSAGE rows.

    Consecutive batches scored by the same model (and challenger) share messages: the Arrow columns are built
    once per message, not once per batch, so many small batches cost about what one large one does.
    """
    messages: list[bytes] = []
    group: list[ScoredRows] = []
    for part in [p for p in parts if len(p)]:
        if group and part.scored_by != group[0].scored_by:
            messages += _messages(group)
            group = []
        group.append(part)
    if group:
        messages += _messages(group)
    return messages


def _messages(group: Sequence[ScoredRows]) -> list[bytes]:
    table = pa.Table.from_batches([_batch(group)])
    return [_ipc(table.slice(start, ROWS_PER_MESSAGE)) for start in range(0, table.num_rows, ROWS_PER_MESSAGE)]


def read_scored_message(raw: bytes) -> pa.Table:
    """One scored-topic message back as rows; ValueError when it is not one (wrong columns or types)."""
    try:
        table = pa.ipc.open_stream(raw).read_all()
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"not an Arrow IPC stream: {error}") from None
    if not table.schema.equals(SCORED_SCHEMA, check_metadata=False):
        raise ValueError(f"columns are not the scored record's: {table.schema.names}")
    return table


def _batch(group: Sequence[ScoredRows]) -> pa.RecordBatch:
    """The rows of batches scored by the same model (and challenger) as one record batch."""
    first = group[0]
    txs = [t for part in group for t in part.transactions]
    n = len(txs)
    model, shadow = first.model, first.shadow
    features = np.ascontiguousarray(np.concatenate([part.features for part in group]), dtype=np.float64)
    width = features.shape[1] if features.ndim == 2 else 0
    # Columns the feature matrix already holds are taken from it (numpy), the rest from the transactions.
    taken = _from_features(features, model.feature_set)
    event_times = np.concatenate([np.asarray(part.event_times, dtype=np.float64) for part in group])
    missing = np.isnan(event_times)
    event_us = np.where(missing, 0, np.round(np.nan_to_num(event_times) * 1e6)).astype(np.int64)
    scored_us = np.repeat(
        np.array([int(part.scored_at.timestamp() * 1e6) for part in group], dtype=np.int64),
        [len(part) for part in group],
    )
    columns: list[pa.Array] = [
        pa.array([t.tx_id for t in txs], pa.string()),
        pa.array(scored_us, _TIME),
        pa.array(event_us, _TIME, mask=missing),
        pa.array(np.array([t.step for t in txs], dtype=np.int32)),
        taken.get("type") or pa.array([t.type.value for t in txs], pa.string()).dictionary_encode(),
        *(taken.get(c) or _floats(txs, c) for c in _MONEY[:1]),
        pa.array([t.name_orig for t in txs], pa.string()),
        *(taken.get(c) or _floats(txs, c) for c in _MONEY[1:3]),
        pa.array([t.name_dest for t in txs], pa.string()),
        *(taken.get(c) or _floats(txs, c) for c in _MONEY[3:]),
        _constant(model.name, n),
        _constant(model.version, n),
        _constant(model.feature_set, n),
        pa.ListArray.from_arrays(
            pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32)), pa.array(features.ravel())
        ),
        pa.array(np.concatenate([np.asarray(part.scores, dtype=np.float64) for part in group])),
        pa.array(np.full(n, model.threshold, dtype=np.float64)),
        _decisions(np.concatenate([part.blocked for part in group]), np.concatenate([part.reviewed for part in group])),
    ]
    shadows = [part.shadow for part in group if part.shadow is not None]
    if shadow is None:  # a group shares its challenger (ScoredRows.scored_by): all rows have one, or none
        columns += [pa.nulls(n, _TEXT), pa.nulls(n, pa.float64()), pa.nulls(n, _TEXT)]
    else:
        columns += [
            _constant(shadow.version, n),
            pa.array(np.concatenate([np.asarray(s.scores, dtype=np.float64) for s in shadows])),
            _decisions(np.concatenate([s.blocked for s in shadows]), np.concatenate([s.reviewed for s in shadows])),
        ]
    return pa.RecordBatch.from_arrays(columns, schema=SCORED_SCHEMA)


# The money columns in the record's order, each with the Transaction attribute holding it (and the feature of the
# same name, in the feature sets that have one).
_MONEY = ("amount", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest")
_ATTRIBUTE = {
    "amount": "amount",
    "oldbalanceOrg": "old_balance_orig",
    "newbalanceOrig": "new_balance_orig",
    "oldbalanceDest": "old_balance_dest",
    "newbalanceDest": "new_balance_dest",
}
_TYPE_FEATURES = tuple(f"type_{t.lower()}" for t in TX_TYPES)


def _from_features(features: np.ndarray, feature_set: str) -> dict[str, pa.Array]:
    try:
        names = feature_names(feature_set)
    except FeatureError:
        return {}
    where = {name: i for i, name in enumerate(names)}
    taken: dict[str, pa.Array] = {
        column: pa.array(features[:, where[name]]) for column, name in _ATTRIBUTE.items() if name in where
    }
    if all(name in where for name in _TYPE_FEATURES):
        one_hot = features[:, [where[name] for name in _TYPE_FEATURES]]
        taken["type"] = pa.DictionaryArray.from_arrays(
            pa.array(np.argmax(one_hot, axis=1).astype(np.int32)), pa.array(TX_TYPES, pa.string())
        )
    return taken


def _floats(txs: Sequence[Transaction], column: str) -> pa.Array:
    attribute = _ATTRIBUTE[column]
    return pa.array(np.array([getattr(t, attribute) for t in txs], dtype=np.float64))


def _constant(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], pa.string()))


def decision_codes(blocked: np.ndarray, reviewed: np.ndarray) -> np.ndarray:
    """Each row's decision as its index in DECISIONS (allow, review, block)."""
    codes = np.zeros(len(blocked), dtype=np.int32)
    codes[np.asarray(reviewed, dtype=bool)] = DECISIONS.index("review")
    codes[np.asarray(blocked, dtype=bool)] = DECISIONS.index("block")
    return codes


def _decisions(blocked: np.ndarray, reviewed: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(decision_codes(blocked, reviewed)), pa.array(DECISIONS, pa.string()))


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())
