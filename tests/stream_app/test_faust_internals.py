"""The Faust, mode and aiokafka internals the bulk path (stream_app/bulk.py) leans on: each still there, same shape.

faust-streaming is pinned exactly in pyproject.toml. An upgrade that renames, removes or reshapes one of these
fails here, by name, instead of breaking the scorer at run time.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport import drivers
from faust.transport.consumer import Consumer, Fetcher, ThreadDelegateConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service
from mode.threads import QueueServiceThread, ServiceThread
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from core.settings import PROJECT_ROOT
from stream_app import bulk

# (owner, name, parameter names): methods the bulk consumer overrides or calls.
METHODS: list[tuple[type, str, list[str]]] = [
    (Consumer, "_drain_messages", ["self", "fetcher"]),  # overridden: the fetch loop
    (Consumer, "_wait_next_records", ["self", "timeout"]),  # called: Faust's fetch step (flow control, pauses)
    (Consumer, "_filter_tps_with_pending_acks", ["self", "topics"]),  # overridden: which partitions to commit
    (Consumer, "_new_offset", ["self", "tp"]),  # overridden: the offset to commit
    (Consumer, "_should_commit", ["self", "tp", "offset"]),  # overridden
    (ThreadDelegateConsumer, "_commit", ["self", "offsets"]),  # overridden: what was committed
    (faust_aiokafka.Consumer, "_to_message", ["self", "tp", "record"]),  # called for other topics
    (Consumer, "_add_gap", ["self", "tp", "offset_from", "offset_to"]),  # called for other topics
    (Consumer, "on_partitions_revoked", ["self", "revoked"]),  # overridden: settle before Faust forgets
    (Consumer, "wait_empty", ["self"]),  # overridden: a stopping worker settles before Faust's last commit
    (ThreadDelegateConsumer, "seek_to_committed", ["self"]),  # overridden: where the books open
    (faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer", ["self"]),  # called: committed offsets, first
    (ThreadDelegateConsumer, "seek_wait", ["self", "partitions"]),  # called: back to offsets not handed out
    (Consumer, "commit", ["self", "topics", "start_new_transaction"]),  # called when the window is full
    (Consumer, "stop_flow", ["self"]),
    (Consumer, "wait_first", ["self", "coros", "timeout"]),
    (faust.Channel, "put", ["self", "value"]),
    (faust.Channel, "clone", ["self", "is_iterator", "kwargs"]),
    # The consumer "thread" on the app's loop (bulk.LoopConsumerThread):
    (faust_aiokafka.Consumer, "_new_consumer_thread", ["self"]),  # overridden: which consumer thread
    (ServiceThread, "__init__", ["self", "executor", "loop", "thread_loop", "Worker", "kwargs"]),  # thread_loop=
    (ServiceThread, "start", ["self"]),  # overridden: no thread
    (ServiceThread, "_serve", ["self"]),  # called: what the thread would run
    (ServiceThread, "_gather_remaining_tasks", ["self"]),  # overridden: the loop's other tasks are the app's
    (QueueServiceThread, "call_thread", ["self", "fun", "args", "kwargs"]),  # overridden: a plain await
]

# Attributes of a consumer instance the bulk path reads.
CONSUMER_ATTRIBUTES = [
    "_read_offset",
    "_buffered_partitions",
    "_stopped",
    "flow_active",
    "can_resume_flow",
    "suspend_flow",
    "scheduler",
    "callback",
    "consumer_stopped_errors",
]


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(inspect.unwrap(function)).parameters)


@pytest.mark.parametrize(("owner", "name", "expected"), METHODS, ids=[f"{o.__name__}.{n}" for o, n, _ in METHODS])
def test_a_method_the_bulk_path_relies_on_keeps_its_signature(owner: type, name: str, expected: list[str]) -> None:
    method = getattr(owner, name, None)
    assert method is not None, f"{owner.__module__}.{owner.__qualname__}.{name} is gone: stream_app/bulk.py needs it"
    assert _parameters(method) == expected, (
        f"{owner.__qualname__}.{name} changed its signature to {_parameters(method)} (expected {expected}): "
        "revisit stream_app/bulk.py before upgrading faust-streaming"
    )


@pytest.mark.parametrize("package", ["faust-streaming", "mode-streaming"])
def test_faust_and_mode_are_the_pinned_versions(package: str) -> None:
    pinned = re.search(rf'"{package}==([^"]+)"', (PROJECT_ROOT / "pyproject.toml").read_text())
    assert pinned, f"pyproject.toml must pin {package} exactly: stream_app/bulk.py leans on its internals"
    assert version(package) == pinned.group(1)


def test_the_fetch_step_still_returns_records_and_active_partitions() -> None:
    source = inspect.getsource(Consumer._wait_next_records)
    assert "return records, active_partitions" in source, "Consumer._wait_next_records changed what it returns"


def test_stock_revoke_still_forgets_acked_offsets_first_which_the_bulk_consumer_settles_before() -> None:
    # Why BulkConsumer.on_partitions_revoked commits before calling Faust's: if this ever changes upstream, the
    # override is still correct, but the note in stream_app/bulk.py should say so.
    source = inspect.getsource(Consumer.on_partitions_revoked)
    assert "self._acked.pop(tp, None)" in source


def test_the_consumer_the_app_builds_is_the_bulk_one_with_the_attributes_it_reads() -> None:
    app = faust.App("internals-test", broker="kafka://127.0.0.1:1", broker_consumer=bulk.broker_url("127.0.0.1:1"))
    route = bulk.install(app, app.topic("tx"), window=100, revoke_timeout_s=1.0)
    assert drivers.TRANSPORTS.aliases[bulk.BULK_SCHEME] == "stream_app.bulk:BulkTransport"
    consumer = app.consumer
    assert isinstance(consumer, bulk.BulkConsumer)
    assert consumer._route is route
    missing = [name for name in CONSUMER_ATTRIBUTES if not hasattr(consumer, name)]
    assert not missing, f"Faust's consumer no longer has {missing}: stream_app/bulk.py reads them"
    assert hasattr(Fetcher(app), "_stopped") and isinstance(Service(), Service)
    assert route.channel.queue.maxsize == bulk.QUEUED_FETCHES
    assert "subscriber_count" in dir(route.channel)
    thread = consumer._thread
    assert isinstance(thread, bulk.LoopConsumerThread)
    assert thread.thread_loop is thread.parent_loop is app.loop, "the consumer must run on the app's loop"
    assert thread._thread_running is None and not thread._thread_started.is_set()


def test_the_stock_thread_start_still_sets_the_fields_the_loop_version_sets() -> None:
    # LoopConsumerThread.start replaces ServiceThread.start; it must set what the rest of ServiceThread reads.
    source = inspect.getsource(ServiceThread.start)
    for line in ("self._thread_started.set()", "self._thread_running = ", "await self._thread_running"):
        assert line in source, f"ServiceThread.start no longer does `{line}`: revisit bulk.LoopConsumerThread.start"
    serve = inspect.getsource(ServiceThread._serve)
    assert "notify, self._thread_running" in serve, "ServiceThread._serve no longer signals that it started"


def test_the_queue_types_the_channel_builds_on() -> None:
    event = FlowControlEvent(initially_suspended=False)
    assert event.is_active()
    queue: ThrowableQueue[int] = ThrowableQueue(maxsize=2, flow_control=event)
    assert queue.maxsize == 2
    assert "clear_on_resume" in _parameters(ThrowableQueue.__init__) or "kwargs" in _parameters(ThrowableQueue.__init__)


def test_aiokafka_records_still_carry_the_fields_the_bulk_path_reads() -> None:
    fields = {f.name for f in dataclasses.fields(ConsumerRecord)}
    needed = {"topic", "partition", "offset", "timestamp", "key", "value", "headers"}
    assert needed <= fields, f"aiokafka's ConsumerRecord lost {needed - fields}"


@pytest.mark.parametrize("store", ["rocksdb://", "memory://"])
def test_the_account_tables_store_reads_and_writes_faust_stores_by_partition(store: str, tmp_path: Any) -> None:
    # stream_app/accounts.py's FaustStore: RocksDB's `_db_for_partition` (written with rocksdict's WriteBatch), the
    # memory store's `.data`; and what Faust's own changelog restore writes (`apply_changelog_batch`) is what it reads.
    from types import SimpleNamespace

    from stream_app.accounts import FaustStore

    app = faust.App("internals-store", broker="kafka://127.0.0.1:1", store=store, datadir=str(tmp_path))
    table = app.Table("accounts", key_type=bytes, value_type=bytes, partitions=4)
    accounts = FaustStore(table)
    accounts.write(2, [(b"C1", b"one"), (b"C3", b"three")])
    assert accounts.get(2, b"C1") == b"one"
    assert accounts.get(2, b"C3") == b"three"
    assert accounts.get(2, b"C2") is None
    from faust.types import TP

    restored = SimpleNamespace(key=b"C2", value=b"two", partition=3, offset=0, tp=TP("accounts-changelog", 3))
    event = SimpleNamespace(message=restored, key=b"C2", value=b"two")
    table.data.apply_changelog_batch([event], to_key=lambda k: k, to_value=lambda v: v)
    assert accounts.get(3, b"C2") == b"two"
