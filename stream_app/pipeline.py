"""One micro-batch of raw messages -> verdict and dead-letter records, with the metrics it moves.

Pure of Kafka: the Faust agent (or the baseline loop) hands it messages and delivers what it returns. Every
message gets exactly one record back: its verdict, or a dead letter saying why it has none.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from schemas.transaction import Transaction
from stream_app.metrics import ScorerMetrics
from stream_app.parse import Invalid, parse_transaction
from stream_app.scoring import Scored, Scorer

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]

# Kafka's per-header overhead on the wire is a few bytes (varint lengths); count it generously.
_HEADER_OVERHEAD = 8
# A dead letter longer than its cap keeps at most this much of the original key: keys are account ids.
_DEAD_LETTER_KEY_PREFIX = 1024


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

    @property
    def overhead(self) -> int:
        """Bytes the message carries besides its value: the key and the headers."""
        return len(self.key or b"") + headers_size(self.headers)


@dataclass(slots=True)
class Record:
    """One message to produce; `source` is the message it answers, for a dead letter if it cannot be sent."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None
    source: Incoming | None = None
    attempts: int = 0  # refusals of the record itself (too large, invalid)
    retries: int = 0  # transient failures (the broker away, a missing topic)
    partition: int = -1  # -1: the producer's partitioner picks it from the key


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """A batch the champion scored, as what follows the scoring sees it (stream_app/closed_loop.py): the shadow
    challenger, the scored-transaction log, drift. `event_times`: each transaction's event_time, or its Kafka
    timestamp, in seconds."""

    transactions: list[Transaction]
    sources: list[Incoming]
    scored: Scored
    scorer: Scorer
    event_times: np.ndarray
    state: np.ndarray | None = None  # each transaction's account state, when the worker keeps account tables


@dataclass(slots=True)
class BatchOutcome:
    """What to produce for a batch, and the start times of its valid transactions for the latency metric;
    `champion` is the batch as scored, for what follows the scoring (`BatchProcessor.follow_up`)."""

    records: list[Record] = field(default_factory=list)
    started_at: np.ndarray = field(default_factory=lambda: np.empty(0))
    scored: int = 0
    invalid: int = 0
    model_version: str = ""
    champion: ScoredBatch | None = None


# What follows the scoring of a batch: more records to produce after the batch's verdicts (acknowledged before its
# offsets are committed, like them).
Follower = Callable[[ScoredBatch], list["Record"]]
# The account state of a batch's valid transactions not yet in the account tables, in order (each updating the
# tables), the records to produce with the verdicts (the credits), and per transaction whether it is new (one the
# tables already hold was answered before a crash: it is not answered again): stream_app/accounts.py.
StateOf = Callable[[Sequence[Transaction], Sequence["Incoming"]], tuple[np.ndarray, list["Record"], list[bool]]]


def headers_size(headers: Headers | None) -> int:
    if not headers:
        return 0
    return sum(len(k) + len(v or b"") + _HEADER_OVERHEAD for k, v in headers)


def dead_letter(message: Incoming, invalid: Invalid, dlq_topic: str, max_bytes: int) -> Record:
    """The original bytes and headers, plus headers saying what was wrong and where the message came from.

    A dead letter is never larger than `max_bytes`: a bigger original keeps its reason headers, a prefix of
    its key and value, and headers saying so (with the original sizes and the value's SHA-256), rather than
    failing to produce.
    """
    value = message.value or b""
    key = message.key
    original: Headers = list(message.headers or [])
    headers: Headers = [
        ("momoguard.reason", invalid.reason.encode()),
        ("momoguard.error", invalid.error.encode()[:1000]),
        ("momoguard.source.topic", message.topic.encode()),
        ("momoguard.source.partition", str(message.partition).encode()),
        ("momoguard.source.offset", str(message.offset).encode()),
    ]
    if len(value) + len(key or b"") + headers_size(original) + headers_size(headers) <= max_bytes:
        return Record(dlq_topic, key, value, original + headers)
    headers += [
        ("momoguard.truncated", b"true"),
        ("momoguard.original.key_bytes", str(len(key or b"")).encode()),
        ("momoguard.original.value_bytes", str(len(value)).encode()),
        ("momoguard.original.headers", str(len(original)).encode()),
        ("momoguard.original.value_sha256", hashlib.sha256(value).hexdigest().encode()),
    ]
    key = key[:_DEAD_LETTER_KEY_PREFIX] if key is not None else None
    budget = max_bytes - headers_size(headers) - len(key or b"")
    if headers_size(original) <= budget // 4:  # the original headers fit beside a good part of the value
        headers = original + headers
        budget -= headers_size(original)
    return Record(dlq_topic, key, value[: max(0, budget)], headers)


def started_times(valid: Sequence[Transaction], sources: Sequence[Incoming]) -> np.ndarray:
    """When each transaction's clock starts, for its deadline and the latency metric: its event time, else the
    Kafka timestamp of its message (seconds since the epoch)."""
    now = time.time()
    return np.fromiter(
        (
            tx.event_time.timestamp() if tx.event_time else (source.timestamp_s or now)
            for tx, source in zip(valid, sources, strict=True)
        ),
        dtype=np.float64,
        count=len(valid),
    )


def count_verdicts(metrics: ScorerMetrics, scored: Scored) -> None:
    """Move the decision, list and deadline counters by one batch's verdicts."""
    # count_nonzero: a third of a boolean array's sum() on a micro-batch.
    blocked, reviewed = int(np.count_nonzero(scored.blocked)), int(np.count_nonzero(scored.reviewed))
    metrics.scored.labels("block").inc(blocked)
    if reviewed:
        metrics.scored.labels("review").inc(reviewed)
    metrics.scored.labels("allow").inc(len(scored.verdicts) - blocked - reviewed)
    for action, n in scored.listed.items():
        metrics.list_decisions.labels(action).inc(n)
    late = int(np.count_nonzero(scored.late))
    if late:
        metrics.late.inc(late)


class BatchProcessor:
    """Parses, scores and routes one micro-batch; the scorer is swapped only between batches."""

    def __init__(
        self,
        scorer: Scorer,
        metrics: ScorerMetrics,
        verdicts_topic: str,
        dlq_topic: str,
        max_bytes: int,
        dlq_max_bytes: int = 65_536,
        follow: Follower | None = None,
    ) -> None:
        self.scorer = scorer
        self.follow = follow
        self.metrics = metrics
        self.verdicts_topic = verdicts_topic
        self.dlq_topic = dlq_topic
        self.max_bytes = max_bytes
        self.dlq_max_bytes = dlq_max_bytes

    def swap(self, scorer: Scorer) -> None:
        """Use a new model from the next batch on."""
        self.scorer = scorer

    def process(self, batch: Sequence[Incoming], state_of: StateOf | None = None) -> BatchOutcome:
        """The verdicts and dead letters of `batch`; with `state_of`, scored on the account state it gives."""
        started = time.perf_counter()
        outcome = BatchOutcome(model_version=self.scorer.version)
        valid: list[Transaction] = []
        sources: list[Incoming] = []
        for message in batch:
            parsed = parse_transaction(message.value, self.max_bytes, message.overhead)
            if isinstance(parsed, Invalid):
                self._reject(message, parsed, outcome)
            else:
                valid.append(parsed)
                sources.append(message)
        state: np.ndarray | None = None
        credits: list[Record] = []
        if valid and state_of is not None:
            state, credits, fresh = state_of(valid, sources)
            if not all(fresh):
                valid = [tx for tx, new in zip(valid, fresh, strict=True) if new]
                sources = [source for source, new in zip(sources, fresh, strict=True) if new]
        if valid:
            started_at = started_times(valid, sources)
            scored, valid, sources, started_at, state = self._score(valid, sources, started_at, outcome, state)
            outcome.records.extend(
                Record(self.verdicts_topic, source.key, verdict, source=source)
                for source, verdict in zip(sources, scored.verdicts, strict=True)
            )
            outcome.records.extend(credits)
            count_verdicts(self.metrics, scored)
            self.metrics.score.observe_many(scored.scores)
            outcome.started_at = started_at
            outcome.scored = len(valid)
            outcome.champion = ScoredBatch(valid, sources, scored, self.scorer, started_at, state)
        self.metrics.batch_size.observe(len(batch))
        self.metrics.scoring_seconds.observe(time.perf_counter() - started)
        return outcome

    def follow_up(self, outcome: BatchOutcome) -> list[Record]:
        """What follows the scoring of a processed batch (the closed loop): run once its verdicts are produced,
        so that they do not wait for it."""
        if self.follow is None or outcome.champion is None:
            return []
        return self.follow(outcome.champion)

    def undeliverable(self, record: Record, error: str) -> Record | None:
        """The dead letter that replaces a verdict the broker refuses for good (None for a dead letter)."""
        if record.source is None or record.topic == self.dlq_topic:
            return None
        self.metrics.invalid.labels("undeliverable").inc()
        return dead_letter(
            record.source, Invalid("undeliverable", f"{record.topic}: {error}"), self.dlq_topic, self.dlq_max_bytes
        )

    def delivered(self, outcome: BatchOutcome) -> None:
        """Record end-to-end latency once the broker has acknowledged the batch's verdicts."""
        self.metrics.end_to_end.observe_many(np.maximum(0.0, time.time() - outcome.started_at))

    def _reject(self, message: Incoming, invalid: Invalid, outcome: BatchOutcome) -> None:
        log.warning(
            "dead letter %s[%d]@%d: %s (%s)",
            message.topic,
            message.partition,
            message.offset,
            invalid.reason,
            invalid.error,
        )
        self.metrics.invalid.labels(invalid.reason).inc()
        outcome.records.append(dead_letter(message, invalid, self.dlq_topic, self.dlq_max_bytes))
        outcome.invalid += 1

    def _score(
        self,
        valid: list[Transaction],
        sources: list[Incoming],
        started_at: np.ndarray,
        outcome: BatchOutcome,
        state: np.ndarray | None,
    ) -> tuple[Scored, list[Transaction], list[Incoming], np.ndarray, np.ndarray | None]:
        """Score the batch; if that fails, score its transactions one by one and dead-letter the ones that fail."""
        try:
            return self.scorer.score(valid, started_at=started_at, state=state), valid, sources, started_at, state
        except Exception as error:
            log.exception("scoring a batch of %d failed (%s); scoring its transactions one by one", len(valid), error)
        parts: list[Scored] = []
        kept: list[int] = []
        for i, (tx, source) in enumerate(zip(valid, sources, strict=True)):
            try:
                one = None if state is None else state[i : i + 1]
                parts.append(self.scorer.score([tx], started_at=started_at[i : i + 1], state=one))
            except Exception as error:
                self._reject(source, Invalid("scoring_error", f"{type(error).__name__}: {error}"[:500]), outcome)
                continue
            kept.append(i)
        kept_state = None if state is None else state[kept]
        return Scored.join(parts), [valid[i] for i in kept], [sources[i] for i in kept], started_at[kept], kept_state
