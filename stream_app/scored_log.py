"""The scored-transaction log's side of the scorer: each scored batch as records of the scored topic.

The records carry the champion's very feature matrix (never computed again), its score and decision, and the
challenger's when one shadowed the batch (schemas/scored.py defines them). They are produced with the batch's
verdicts, so the batch's offsets are committed only once they are acknowledged too: the log misses nothing the
scorer answered. The sink (`momoguard log-sink`, feedback/sink.py) writes them to Parquet.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.scored import RECORD_KIND, ModelColumns, ShadowColumns, scored_messages
from stream_app.pipeline import Record, ScoredBatch

RECORD_HEADER = "momoguard.record"


def scored_records(batch: ScoredBatch, topic: str, shadow: ShadowColumns | None = None) -> list[Record]:
    """The batch's scored-transaction records (one message per ROWS_PER_MESSAGE rows, no key)."""
    model = batch.scorer.model
    scored = batch.scored
    messages = scored_messages(
        batch.transactions,
        scored.features,
        scored.scores,
        scored.blocked,
        scored.reviewed,
        ModelColumns(model.name, model.version, model.feature_set, model.threshold),
        datetime.now(UTC),
        batch.event_times,
        shadow,
    )
    # No `source`: a record the broker refuses for good is counted and skipped (the transactions have verdicts).
    return [Record(topic, None, message, [(RECORD_HEADER, RECORD_KIND)]) for message in messages]
