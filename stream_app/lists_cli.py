"""`momoguard lists add|remove|show`: the fraud desk's block, allow and review lists, on the lists topic.

A change reaches every worker within about a second (each follows the topic, stream_app/list_topic.py) and
survives restarts (the topic is compacted: a worker that starts reads every entry in force).
"""

from __future__ import annotations

import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from core.errors import ConfigError
from core.settings import Settings
from core.tables import Column, print_table

if TYPE_CHECKING:
    from schemas.lists import ListEntry

lists_app = typer.Typer(
    help="The fraud desk's lists: force block, allow or review for an account, now, on every worker.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
console = Console()

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(?:\d+[smhdw])+")
MAX_TTL = timedelta(days=3650)
_SIDES = {"orig": "as sender", "dest": "as recipient", "both": "as sender and recipient"}


def parse_ttl(text: str) -> timedelta:
    """A time to live such as 90s, 30m, 24h, 7d, 2w or 1d12h; ConfigError (one line) otherwise."""
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise ConfigError(f"--ttl {text!r} is not a duration: use a number and a unit, such as 30m, 24h, 7d or 1d12h")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([smhdw])", cleaned))
    if seconds <= 0:
        raise ConfigError(f"--ttl {text!r} is zero: an entry must last a while (or leave --ttl out: no expiry)")
    if seconds > MAX_TTL.total_seconds():
        raise ConfigError(f"--ttl {text!r} is over ten years: leave --ttl out for an entry that never expires")
    return timedelta(seconds=seconds)


def check_account(account: str, settings: Settings) -> str:
    account = account.strip()
    if not re.fullmatch(settings.list_account_pattern, account):
        raise ConfigError(
            f"--account {account!r} is not an account id of the expected format "
            f"({settings.list_account_pattern}, set by MOMOGUARD_LIST_ACCOUNT_PATTERN)"
        )
    return account


def chosen_action(block: bool, allow: bool, review: bool) -> str:
    given = [name for name, on in (("block", block), ("allow", allow), ("review", review)) if on]
    if len(given) != 1:
        got = " and ".join(f"--{g}" for g in given) if given else "none"
        raise ConfigError(f"give exactly one of --block, --allow and --review (got {got})")
    return given[0]


def describe(entry: ListEntry) -> str:
    until = f"until {_time(entry.expires_at)}" if entry.expires_at else "with no expiry"
    return (
        f"{entry.action} {entry.account} {_SIDES[entry.direction]} {until}: "
        f"{entry.reason} (by {entry.added_by}, {_time(entry.added_at)})"
    )


def _time(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@lists_app.command("add", short_help="Block, allow or review an account now.")
def add(
    account: Annotated[str, typer.Option("--account", help="The account id, e.g. C1305486145.", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the desk and the verdict.", show_default=False)],
    block: Annotated[bool, typer.Option("--block", help="Block its transactions.")] = False,
    allow: Annotated[bool, typer.Option("--allow", help="Let its transactions through (beats the model).")] = False,
    review: Annotated[bool, typer.Option("--review", help="Send its transactions to review.")] = False,
    direction: Annotated[
        str, typer.Option("--direction", help="orig (it sends), dest (it receives) or both.")
    ] = "both",
    ttl: Annotated[
        str | None, typer.Option("--ttl", help="Expire after this long: 30m, 24h, 7d... (default: never).")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who adds it (default: your user name).")] = None,
) -> None:
    """Add the account's entry (replacing the one it has); every worker applies it within about a second."""
    from pydantic import ValidationError

    from schemas.lists import ListEntry
    from stream_app.list_topic import write_entry

    settings = Settings()
    action = chosen_action(block, allow, review)
    account = check_account(account, settings)
    if direction not in _SIDES:
        raise ConfigError(f"--direction {direction!r} is not one of orig, dest, both")
    now = datetime.now(UTC)
    expires = now + parse_ttl(ttl) if ttl is not None else None
    try:
        entry = ListEntry(
            account=account,
            action=action,
            direction=direction,
            reason=reason,
            added_by=by if by is not None else _user(),
            added_at=now,
            expires_at=expires,
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(f"--{first['loc'][0]}".replace("_", "-") + f": {first['msg']}") from None
    # Written at once (an entry replaces the account's previous one): reading the lists first to name the entry
    # replaced would delay every change by a read of the whole topic.
    write_entry(settings, entry)
    console.print(describe(entry), soft_wrap=True, highlight=False)


@lists_app.command("remove", short_help="Remove an account's entry.")
def remove(
    account: Annotated[str, typer.Option("--account", help="The account id.", show_default=False)],
) -> None:
    """Remove the account's entry (a tombstone on the lists topic): the model decides again."""
    from stream_app.list_topic import read_entries, write_removal

    settings = Settings()
    account = check_account(account, settings)
    previous = read_entries(settings).entries.get(account)
    if previous is None:
        raise ConfigError(f"{account} is not on the lists (`momoguard lists show` lists the entries)")
    write_removal(settings, account)
    console.print(f"removed: {describe(previous.entry)}", soft_wrap=True, highlight=False)


@lists_app.command("show", short_help="Every entry, in force or expired.")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Every entry on the lists topic, with whether it is in force (expired entries stay until removed)."""
    from stream_app.list_topic import entry_json, read_entries

    settings = Settings()
    table = read_entries(settings)
    now = datetime.now(UTC)
    entries = [listed.entry for _, listed in sorted(table.entries.items())]
    if as_json:
        typer.echo(json.dumps({"topic": settings.topic_lists, "entries": [entry_json(e, now) for e in entries]}))
        return
    if not entries:
        console.print(f"no entries on {settings.topic_lists}", highlight=False)
        return
    columns = [Column("account", text=True), Column("action", text=True), Column("direction", text=True)]
    columns += [Column("expires", text=True), Column("added by", text=True), Column("reason", text=True)]
    rows = [
        [
            e.account,
            e.action,
            e.direction,
            ("never" if e.expires_at is None else _time(e.expires_at)) + ("" if e.in_force(now) else " (expired)"),
            e.added_by,
            e.reason,
        ]
        for e in entries
    ]
    print_table(
        console,
        columns,
        rows,
        title=f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'} on {settings.topic_lists}",
    )
