"""Labels in and out: from the command line or a CSV file, to the `labels` topic, and as Parquet rows in the log.

A label names its transaction by tx_id only; whether the log holds that transaction yet does not matter when it is
given (the sink may not have written it, or it may come from a chargeback months later): a label for an unknown
tx_id is kept, and reported wherever labels are joined to the log.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from confluent_kafka import KafkaException, Producer
from pydantic import ValidationError

from core.errors import BrokerError
from core.settings import Settings
from feedback.errors import LabelInputError
from kafka_ops.clients import librdkafka_config
from schemas.label import LABEL_SOURCES, Label, label_bytes

LABEL_TABLE_SCHEMA = pa.schema(
    [
        pa.field("tx_id", pa.string(), nullable=False),
        pa.field("is_fraud", pa.bool_(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("labelled_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("note", pa.string()),
    ]
)
_FRAUD = {
    "1": True,
    "true": True,
    "fraud": True,
    "yes": True,
    "0": False,
    "false": False,
    "genuine": False,
    "no": False,
}
CSV_COLUMNS = ("tx_id", "is_fraud", "source", "labelled_at", "note")


def label_table(labels: Iterable[Label]) -> pa.Table:
    """Labels as rows of the log's labels dataset."""
    return pa.Table.from_pylist(
        [
            {"tx_id": x.tx_id, "is_fraud": x.is_fraud, "source": x.source, "labelled_at": x.labelled_at, "note": x.note}
            for x in labels
        ],
        schema=LABEL_TABLE_SCHEMA,
    )


def one_label(tx_id: str, is_fraud: bool, source: str, note: str | None, at: datetime | None = None) -> Label:
    """A label from the command line's arguments; LabelInputError saying what is wrong."""
    return _checked({"tx_id": tx_id, "is_fraud": is_fraud, "source": source, "note": note}, "the label", at)


def labels_from_csv(path: Path, default_source: str | None, at: datetime | None = None) -> list[Label]:
    """Every row of a label CSV (header: tx_id, is_fraud, and optionally source, labelled_at, note).

    `is_fraud` is 1/0, true/false, fraud/genuine or yes/no; a row without `source` takes `default_source`. The
    file is refused whole, with the first bad row named and how many are bad, so no half of it is published.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in ("tx_id", "is_fraud") if c not in header]
            if missing:
                raise LabelInputError(f"{path}: no column {' or '.join(missing)} in the header {header}")
            unknown = [h for h in header if h not in CSV_COLUMNS]
            if unknown:
                raise LabelInputError(
                    f"{path}: unknown column(s) {', '.join(unknown)} (known: {', '.join(CSV_COLUMNS)})"
                )
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LabelInputError(f"cannot read {path}: {error}") from None
    labels: list[Label] = []
    bad: list[str] = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        fraud = _FRAUD.get(row.get("is_fraud", "").lower())
        if fraud is None:
            bad.append(f"line {number}: is_fraud {row.get('is_fraud')!r} is not 1/0, true/false or fraud/genuine")
            continue
        values: dict[str, object] = {
            "tx_id": row.get("tx_id", ""),
            "is_fraud": fraud,
            "source": row.get("source") or default_source,
            "note": row.get("note") or None,
        }
        if row.get("labelled_at"):
            values["labelled_at"] = row["labelled_at"]
        try:
            labels.append(_checked(values, f"line {number}", at))
        except LabelInputError as error:
            bad.append(str(error))
    if bad:
        more = (
            f" ({len(bad)} bad rows of {len(rows)}; nothing was published)"
            if len(bad) > 1
            else " (nothing was published)"
        )
        raise LabelInputError(f"{path}: {bad[0]}{more}")
    if not labels:
        raise LabelInputError(f"{path}: no labels in it")
    return labels


def _checked(values: dict[str, object], where: str, at: datetime | None) -> Label:
    if values.get("source") is None:
        raise LabelInputError(f"{where}: no source (give --source {'|'.join(LABEL_SOURCES)} or a source column)")
    values.setdefault("labelled_at", at or datetime.now(UTC))
    try:
        return Label.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "label"
        raise LabelInputError(f"{where}: {field}: {first['msg']}") from None


def publish(settings: Settings, labels: list[Label], timeout_s: float = 30.0) -> None:
    """Produce the labels to the labels topic (key tx_id, acks=all); BrokerError unless every one is acknowledged."""
    producer = Producer(
        {**librdkafka_config(settings), "acks": "all", "enable.idempotence": True, "linger.ms": 5, "log_level": 0}
    )
    failed: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failed.append(str(error))

    try:
        metadata = producer.list_topics(timeout=10)
    except KafkaException as error:
        raise BrokerError(f"Kafka at {settings.kafka_bootstrap} did not answer: {error.args[0]}") from None
    if settings.topic_labels not in metadata.topics:
        raise BrokerError(f"topic {settings.topic_labels!r} missing: run `momoguard topics create`")
    for label in labels:
        while True:
            try:
                producer.produce(
                    settings.topic_labels, value=label_bytes(label), key=label.tx_id.encode(), on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.05)
    left = producer.flush(timeout_s)
    if left or failed:
        reason = failed[0] if failed else f"{left} not acknowledged within {timeout_s:.0f} s"
        raise BrokerError(f"labels not all published to {settings.topic_labels}: {reason}")
