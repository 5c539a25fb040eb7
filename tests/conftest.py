"""Fixtures of every test: the real Kafka broker (MOMOGUARD_TEST_BOOTSTRAP, or started here), topic factories."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from core.settings import DEFAULT_RUN_DIR
from kafka_ops import local_broker
from tests.support import processes
from tests.support.models import sample_frame


def pytest_configure(config: pytest.Config) -> None:
    processes.mark_session()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No process a test started outlives the session: a leftover is named, stopped, and fails the run."""
    left = processes.leftovers()
    if not left:
        return
    processes.stop(left)
    lines = [f"{len(left)} process(es) started by the tests still ran after the session (now stopped):"]
    lines += [f"  pid {p.pid}: {p.command[:300]}" for p in left]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("\n".join(lines), red=True, bold=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def spare_broker_port(offset: int) -> int:
    """A free port (with the next one free too, for its controller) for a test's own second broker.

    Derived from the session broker's port, so checkouts running their suites side by side on distinct
    KAFKA_BOOTSTRAP ports (say 9092 and 10092) never start their spare brokers on the same port. It stays below
    the kernel's ephemeral range: a port in that range can be taken at any moment as the local end of one of the
    suite's own client connections, and the broker then fails to start with "Address already in use".
    """
    session = int(os.environ.get("MOMOGUARD_TEST_BOOTSTRAP", "127.0.0.1:9092").rpartition(":")[2])
    first_ephemeral = _first_ephemeral_port()
    base = session + 10_000 + offset
    for port in range(base, min(base + 40, first_ephemeral - 1), 2):
        if local_broker.taken_port(local_broker.LocalBroker("127.0.0.1", port, DEFAULT_RUN_DIR / "kafka")) is None:
            return port
    pytest.fail(f"no free port pair for a spare broker in {base}..{base + 40}, below the ephemeral range")


def _first_ephemeral_port() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


@pytest.fixture(scope="session")
def kaggle_frame() -> pl.DataFrame:
    """The two real Kaggle samples (tests/fixtures/paysim) as one PaySim frame with tx_ids s0, s1, ..."""
    return sample_frame()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real broker's address. In CI a broker that cannot start fails the test, never skips."""
    given = os.environ.get("MOMOGUARD_TEST_BOOTSTRAP")
    if given:
        if not local_broker.is_ready(given, timeout=10):
            pytest.fail(f"MOMOGUARD_TEST_BOOTSTRAP={given} does not answer metadata requests")
        yield given
        return
    local = local_broker.LocalBroker.from_bootstrap("127.0.0.1:9092", DEFAULT_RUN_DIR)
    already = local_broker.running_pid(local) is not None
    local_broker.start(local)
    yield local.bootstrap
    if not already:
        local_broker.stop(local)


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Make uniquely named topics for one test and delete them after it."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    made: list[str] = []

    def make(prefix: str = "test", partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
        admin.create_topics([topic])[name].result(30)
        made.append(name)
        return name

    yield make
    if made:
        for future in admin.delete_topics(made).values():
            future.result(30)


# The scorer harness's fixtures, for every test folder that runs a real scorer.
from tests.support.harness import (  # noqa: E402, F401
    champion_registry,
    own_broker,
    own_registry,
    registry_dir,
    scorer,
    scorer_env,
    start_scorer,
    start_sink,
)
