"""Observability test helpers: the system tools the tests run, and a replay publishing in the background."""

from __future__ import annotations

import shutil
import threading
import time

import orjson
import pytest
from confluent_kafka import Producer

from tests.support.models import sample_rows


def tool(name: str) -> str:
    """The path of a system tool the tests need; missing is a failure (CI must not skip), with the fix."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run `make test-deps` (installs Debian's prometheus and chromium)")
    return path


class Replay:
    """Publishes real PaySim sample rows, keyed by originating account, at a steady rate from a thread."""

    def __init__(self, bootstrap: str, topic: str, total: int, rate_per_s: float) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.total = total
        self.rate_per_s = rate_per_s
        self.sent = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="replay", daemon=True)

    def _run(self) -> None:
        rows = sample_rows()
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "acks": "all"})
        started = time.monotonic()
        for i in range(self.total):
            if self.stopping.is_set():
                break
            row = rows[i % len(rows)]
            tx = {**row, "tx_id": f"obs-{i}", "event_time": time.time()}  # latency counts from the send
            producer.produce(self.topic, key=str(row["nameOrig"]).encode(), value=orjson.dumps(tx))
            producer.poll(0)
            self.sent += 1
            ahead = started + (i + 1) / self.rate_per_s - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        assert producer.flush(30) == 0

    def __enter__(self) -> Replay:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(60)

    def wait(self, timeout: float = 120.0) -> int:
        """Wait until every message is sent; returns how many."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "replay did not finish"
        return self.sent
