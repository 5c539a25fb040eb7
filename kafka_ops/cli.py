"""`momoguard kafka up|down|status`, `momoguard topics create` and `momoguard offsets show|skip`."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from core.settings import Settings
from kafka_ops import local_broker, offsets, topics

kafka_app = typer.Typer(
    help="Run the local Kafka broker (single-node KRaft, loopback only).", no_args_is_help=True, rich_markup_mode=None
)
topics_app = typer.Typer(help="Manage MoMo Guard's Kafka topics.", no_args_is_help=True, rich_markup_mode=None)
offsets_app = typer.Typer(
    help="Show, or move by hand, the scorer group's committed offsets.", no_args_is_help=True, rich_markup_mode=None
)
console = Console()


def _local(settings: Settings) -> local_broker.LocalBroker:
    return local_broker.LocalBroker.from_bootstrap(settings.kafka_bootstrap, settings.run_dir)


@kafka_app.command("up", short_help="Start the broker and wait until it answers.")
def up(
    wait: float = typer.Option(90.0, min=1, help="Seconds to wait for the broker to answer."),
    create_topics: bool = typer.Option(True, help="Also create the topics."),
) -> None:
    """Start the local broker (or find it running) and wait until it answers metadata requests."""
    settings = Settings()
    local = _local(settings)
    pid = local_broker.start(local, wait_seconds=wait)
    console.print(f"Kafka {local_broker.kafka_version(local)} ready on {local.bootstrap} (pid {pid})")
    if create_topics:
        _print_outcome(topics.create_topics(settings))


@kafka_app.command("down", short_help="Stop the broker this project started.")
def down() -> None:
    """Stop the broker this project started (by its pid) and wait for it to exit."""
    local = _local(Settings())
    pid = local_broker.stop(local)
    console.print(f"Kafka broker (pid {pid}) stopped" if pid else "no Kafka broker of ours is running")


@kafka_app.command("status", short_help="Bootstrap address, broker version, topics.")
def status() -> None:
    """Print the bootstrap address, the broker's version and the topics."""
    settings = Settings()
    local = _local(settings)
    pid = local_broker.running_pid(local)
    version = local_broker.kafka_version(local) if pid else "unknown (not started by momoguard)"
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


@offsets_app.command("show", short_help="Committed and end offsets, lag, per partition.")
def show_offsets(
    topic: Annotated[str | None, typer.Argument(help="The topic (default: the transactions topic).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The scorer group's committed offset, the end offset and the lag of every partition."""
    settings = Settings()
    topic = topic or settings.topic_transactions
    rows = offsets.positions(settings, topic)
    if as_json:
        partitions = [{**asdict(r), "lag": r.lag} for r in rows]
        typer.echo(json.dumps({"group": settings.consumer_group, "topic": topic, "partitions": partitions}))
        return
    table = Table(title=f"group {settings.consumer_group} on {topic}", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("partition", "committed", "start", "end", "lag"):
        table.add_column(name, justify="right")
    for r in rows:
        committed = "-" if r.committed is None else str(r.committed)
        table.add_row(str(r.partition), committed, str(r.start), str(r.end), str(r.lag))
    console.print(table)
    console.print(f"lag {sum(r.lag for r in rows):,}; '-': nothing committed yet (reads from start)", highlight=False)


@offsets_app.command("skip", short_help="Move the group past one message (workers stopped).")
def skip_offset(
    topic: Annotated[str, typer.Argument(help="The topic, e.g. transactions.")],
    partition: Annotated[int, typer.Argument(min=0, help="The partition.")],
    offset: Annotated[int, typer.Argument(min=0, help="The offset of the message to skip.")],
) -> None:
    """Commit OFFSET+1 for the scorer's group, so the message at OFFSET is never scored (workers stopped)."""
    settings = Settings()
    done = offsets.skip(settings, topic, partition, offset)
    skipped = done.now - done.first_skipped
    what = f"offset {offset}" if skipped == 1 else f"offsets {done.first_skipped}..{offset} ({skipped} messages)"
    was = "nothing" if done.was is None else str(done.was)
    console.print(
        f"group {settings.consumer_group} on {topic}:{partition}: committed {done.now} (was {was}); "
        f"{what} will get no verdict",
        highlight=False,
        soft_wrap=True,
    )
