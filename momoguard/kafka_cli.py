"""`momoguard kafka up|down|status` and `momoguard topics create`."""

from __future__ import annotations

import typer
from rich.console import Console

from momoguard import broker, topics
from momoguard.settings import Settings

kafka_app = typer.Typer(
    help="Run the local Kafka broker (single-node KRaft, loopback only).", no_args_is_help=True, rich_markup_mode=None
)
topics_app = typer.Typer(help="Manage MoMo Guard's Kafka topics.", no_args_is_help=True, rich_markup_mode=None)
console = Console()


def _local(settings: Settings) -> broker.LocalBroker:
    return broker.LocalBroker.from_bootstrap(settings.kafka_bootstrap, settings.run_dir)


@kafka_app.command("up", short_help="Start the broker and wait until it answers.")
def up(
    wait: float = typer.Option(90.0, min=1, help="Seconds to wait for the broker to answer."),
    create_topics: bool = typer.Option(True, help="Also create the topics."),
) -> None:
    """Start the local broker (or find it running) and wait until it answers metadata requests."""
    settings = Settings()
    local = _local(settings)
    pid = broker.start(local, wait_seconds=wait)
    console.print(f"Kafka {broker.kafka_version(local)} ready on {local.bootstrap} (pid {pid})")
    if create_topics:
        _print_outcome(topics.create_topics(settings))


@kafka_app.command("down", short_help="Stop the broker this project started.")
def down() -> None:
    """Stop the broker this project started (by its pid) and wait for it to exit."""
    local = _local(Settings())
    pid = broker.stop(local)
    console.print(f"Kafka broker (pid {pid}) stopped" if pid else "no Kafka broker of ours is running")


@kafka_app.command("status", short_help="Bootstrap address, broker version, topics.")
def status() -> None:
    """Print the bootstrap address, the broker's version and the topics."""
    settings = Settings()
    local = _local(settings)
    pid = broker.running_pid(local)
    version = broker.kafka_version(local) if pid else "unknown (not started by momoguard)"
    console.print(f"bootstrap: {settings.kafka_bootstrap}")
    console.print(f"broker:    {'running, pid ' + str(pid) if pid else 'not started here'}; version {version}")
    found = topics.list_topics(settings)
    console.print("topics:    " + (", ".join(f"{n} ({p} partitions)" for n, p in found.items()) or "none"))


@topics_app.command("create", short_help="Create the three topics (idempotent).")
def create() -> None:
    """Create the transactions, verdicts and dead-letter topics (idempotent)."""
    _print_outcome(topics.create_topics(Settings()))


def _print_outcome(outcome: dict[str, str]) -> None:
    for name, what in outcome.items():
        console.print(f"topic {name}: {what}")
