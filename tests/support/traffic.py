"""Labelled live traffic for the closed loop's tests: real Kaggle rows sent in phases, and analysts' label CSVs."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from core.settings import Settings
from tests.support.harness import messages, produce, topic_size, until
from tests.support.models import sample_rows


def phases(count: int, size: int, frauds: int, run: str) -> list[list[dict[str, object]]]:
    """`count` phases of `size` transactions, `frauds` of each real fraud rows spread evenly among real genuine ones."""
    rows = sample_rows()
    fraud = [r for r in rows if r["isFraud"] == 1]
    genuine = [r for r in rows if r["isFraud"] == 0]
    every = size // frauds
    made: list[list[dict[str, object]]] = []
    n = 0
    for p in range(count):
        phase = []
        for i in range(size):
            pool, at = (fraud, p * frauds + i // every) if i % every == 0 and i // every < frauds else (genuine, n)
            phase.append({**pool[at % len(pool)], "tx_id": f"{run}-{p}-{i}", "event_time": time.time()})
            n += 1
        made.append(phase)
    return made


def send_in_phases(settings: Settings, sent: list[list[dict[str, object]]]) -> None:
    """Each phase once the one before is answered and a new second has begun: the log's time order follows."""
    answered = 0
    s = settings
    for phase in sent:
        produce(s.kafka_bootstrap, s.topic_transactions, messages(phase))
        answered += len(phase)
        until(
            lambda a=answered: topic_size(s.kafka_bootstrap, s.topic_verdicts, s.verdicts_partitions) >= a,
            f"{answered} verdicts",
            timeout=120,
        )
        time.sleep(1.05)  # sequencing, not a timed check: the next phase is scored in a later second


def write_label_csv(path: Path, rows: list[tuple[str, bool]], source: str = "analyst") -> Path:
    """A label CSV as analysts export one: tx_id, is_fraud (fraud/genuine), source, note."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tx_id", "is_fraud", "source", "note"])
        for tx_id, fraud in rows:
            writer.writerow([tx_id, "fraud" if fraud else "genuine", source, "case review"])
    return path
