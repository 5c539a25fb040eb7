"""One micro-batch of raw messages -> verdict and dead-letter records, with the metrics it moves.

Pure of Kafka: the Faust agent hands it messages and delivers what it returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from schemas.transaction import Transaction
from stream_app.delivery import Headers, Record
from stream_app.metrics import ScorerMetrics
from stream_app.parse import Invalid, parse_transaction
from stream_app.scoring import Scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as read from the transactions topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None
    timestamp_s: float | None = None  # the Kafka timestamp, when the transaction has no event_time


@dataclass(slots=True)
class BatchOutcome:
    """What to produce for a batch, and the start times of its valid transactions for the latency metric."""

    records: list[Record] = field(default_factory=list)
    started_at: np.ndarray = field(default_factory=lambda: np.empty(0))
    scored: int = 0
    invalid: int = 0
    model_version: str = ""


def dead_letter(message: Incoming, invalid: Invalid, dlq_topic: str) -> Record:
    """The original bytes and headers, plus headers saying what was wrong and where the message came from."""
    headers: Headers = list(message.headers or [])
    headers += [
        ("momoguard.reason", invalid.reason.encode()),
        ("momoguard.error", invalid.error.encode()[:1000]),
        ("momoguard.source.topic", message.topic.encode()),
        ("momoguard.source.partition", str(message.partition).encode()),
        ("momoguard.source.offset", str(message.offset).encode()),
    ]
    return Record(dlq_topic, message.key, message.value or b"", headers)


class BatchProcessor:
    """Parses, scores and routes one micro-batch; the scorer is swapped only between batches."""

    def __init__(
        self, scorer: Scorer, metrics: ScorerMetrics, verdicts_topic: str, dlq_topic: str, max_bytes: int
    ) -> None:
        self.scorer = scorer
        self.metrics = metrics
        self.verdicts_topic = verdicts_topic
        self.dlq_topic = dlq_topic
        self.max_bytes = max_bytes

    def swap(self, scorer: Scorer) -> None:
        """Use a new model from the next batch on."""
        self.scorer = scorer

    def process(self, batch: Sequence[Incoming]) -> BatchOutcome:
        started = time.perf_counter()
        outcome = BatchOutcome(model_version=self.scorer.version)
        valid: list[Transaction] = []
        sources: list[Incoming] = []
        for message in batch:
            parsed = parse_transaction(message.value, self.max_bytes)
            if isinstance(parsed, Invalid):
                log.warning(
                    "dead letter %s[%d]@%d: %s (%s)",
                    message.topic,
                    message.partition,
                    message.offset,
                    parsed.reason,
                    parsed.error,
                )
                self.metrics.invalid.labels(parsed.reason).inc()
                outcome.records.append(dead_letter(message, parsed, self.dlq_topic))
                outcome.invalid += 1
            else:
                valid.append(parsed)
                sources.append(message)
        if valid:
            scored = self.scorer.score(valid)
            outcome.records.extend(
                Record(self.verdicts_topic, source.key, verdict)
                for source, verdict in zip(sources, scored.verdicts, strict=True)
            )
            blocked = int(scored.blocked.sum())
            self.metrics.scored.labels("block").inc(blocked)
            self.metrics.scored.labels("allow").inc(len(valid) - blocked)
            self.metrics.score.observe_many(scored.scores)
            now = time.time()
            outcome.started_at = np.fromiter(
                (
                    tx.event_time.timestamp() if tx.event_time else (source.timestamp_s or now)
                    for tx, source in zip(valid, sources, strict=True)
                ),
                dtype=np.float64,
                count=len(valid),
            )
            outcome.scored = len(valid)
        self.metrics.batch_size.observe(len(batch))
        self.metrics.scoring_seconds.observe(time.perf_counter() - started)
        return outcome

    def delivered(self, outcome: BatchOutcome) -> None:
        """Record end-to-end latency once the broker has acknowledged the batch's verdicts."""
        self.metrics.end_to_end.observe_many(np.maximum(0.0, time.time() - outcome.started_at))
