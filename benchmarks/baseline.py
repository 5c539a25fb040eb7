"""The benchmark's baseline: the simplest fast scorer, a plain confluent-kafka consume -> score -> produce loop.

Same parse, feature function, model, verdict bytes, scored-transaction log records and delivery guarantee
(verdicts acknowledged before the offsets are committed) as the Faust agent; only the streaming framework
differs. Not for production: no hot reload, no web endpoints, no rebalance handling beyond librdkafka's own.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from types import FrameType

from confluent_kafka import Consumer, Producer

from core.settings import Settings
from kafka_ops.clients import librdkafka_config
from registry import load_champion
from stream_app.closed_loop import ClosedLoop
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import BatchProcessor, Incoming
from stream_app.scoring import Scorer

log = logging.getLogger(__name__)

# consume() returns once it has max_batch messages or this timeout passed. The baseline is only timed on drains of
# a preloaded backlog, where batches fill at once; this keeps its behaviour from before the bulk path.
CONSUME_TIMEOUT_S = 0.02


def run(settings: Settings) -> int:
    """Score until SIGTERM/SIGINT; returns how many transactions it answered."""
    model = load_champion(settings)
    metrics = ScorerMetrics()
    closed_loop = ClosedLoop(settings, metrics, model)  # the log records and drift counts, as the agent
    processor = BatchProcessor(
        Scorer(model, settings.reasons_per_verdict, settings.explain_min_score),
        metrics,
        settings.topic_verdicts,
        settings.topic_dlq,
        settings.max_message_bytes,
        follow=closed_loop.follow,
    )
    consumer = Consumer(
        {
            **librdkafka_config(settings),
            "group.id": settings.consumer_group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    producer = Producer(
        {
            **librdkafka_config(settings),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": settings.producer_linger_ms,  # the scorer's own setting: the same trade-off
            "compression.type": "lz4",
            "batch.num.messages": 10_000,
            "log_level": 0,
        }
    )
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    consumer.subscribe([settings.topic_transactions])
    answered = 0
    try:
        while not stopping:
            messages = consumer.consume(settings.max_batch, timeout=CONSUME_TIMEOUT_S)
            batch = [
                Incoming(
                    m.topic() or "",
                    m.partition() or 0,
                    m.offset() or 0,
                    m.key(),
                    m.value(),
                    None,
                    m.timestamp()[1] / 1000.0,
                )
                for m in messages
                if m.error() is None
            ]
            if not batch:
                continue
            outcome = processor.process(batch)
            records = outcome.records + processor.follow_up(outcome)
            logged = closed_loop.take_log(force=True)  # each batch's rows at once: it commits after each
            for record in records + (logged[0] if logged else []):
                producer.produce(record.topic, value=record.value, key=record.key, headers=record.headers)
            while producer.flush(5.0):  # acknowledged before the offsets move on
                log.warning("verdicts not yet acknowledged; waiting")
            consumer.commit(asynchronous=True)
            answered += outcome.scored
    finally:
        consumer.close()
    return answered


if __name__ == "__main__":
    # No options: everything comes from the MOMOGUARD_* settings, like `momoguard serve`.
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    count = run(Settings())
    log.warning("baseline answered %d transactions in %.1f s", count, time.monotonic() - started)
