"""The desk's lists without Kafka: what a record of the lists topic becomes, and the order of precedence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core.errors import ConfigError
from core.settings import Settings
from schemas.lists import ListEntry
from schemas.transaction import Transaction
from stream_app.lists import ListTable, Malformed, parse_list_record
from stream_app.lists_cli import check_account, chosen_action, parse_ttl
from tests.support.messages import GOOD

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SENDER, RECIPIENT = "C100", "C200"


def entry(account: str, action: str, direction: str = "both", expires: datetime | None = None) -> ListEntry:
    return ListEntry.model_validate(
        {
            "account": account,
            "action": action,
            "direction": direction,
            "reason": f"{action} {account}",
            "added_by": "desk",
            "added_at": NOW,
            "expires_at": expires,
        }
    )


def tx(orig: str = SENDER, dest: str = RECIPIENT, tx_id: str = "t") -> Transaction:
    return Transaction.model_validate({**GOOD, "tx_id": tx_id, "nameOrig": orig, "nameDest": dest})


def decided(table: ListTable, transaction: Transaction, at: datetime = NOW) -> tuple[str, str, str] | None:
    """(action, account, side) of the entry that decides the transaction, None when the model decides."""
    hits = table.matches([transaction], at.timestamp())
    if not hits:
        return None
    ((_, hit),) = hits
    return hit.action, hit.account, hit.side


def test_an_entry_applies_to_the_sides_its_direction_names() -> None:
    table = ListTable()
    table.put(entry(SENDER, "block", "orig"))
    assert decided(table, tx(orig=SENDER)) == ("block", SENDER, "orig")
    assert decided(table, tx(orig="C9", dest=SENDER)) is None, "orig: not when it receives"
    table.put(entry(SENDER, "block", "dest"))  # replaces the account's entry
    assert decided(table, tx(orig=SENDER)) is None
    assert decided(table, tx(orig="C9", dest=SENDER)) == ("block", SENDER, "dest")
    table.put(entry(SENDER, "block", "both"))
    assert decided(table, tx(orig=SENDER)) == ("block", SENDER, "orig")
    assert decided(table, tx(orig="C9", dest=SENDER)) == ("block", SENDER, "dest")
    assert decided(table, tx(orig="C8", dest="C9")) is None


def test_precedence_between_the_sender_and_the_recipient_the_stricter_action_decides() -> None:
    cases = [
        # (sender's action, recipient's action) -> (deciding action, deciding side)
        (("allow", "block"), ("block", "dest")),  # an allowed customer paying a blocked mule: blocked
        (("block", "allow"), ("block", "orig")),  # a blocked sender paying an allowed merchant: blocked
        (("allow", "review"), ("review", "dest")),
        (("review", "allow"), ("review", "orig")),
        (("review", "block"), ("block", "dest")),
        (("block", "block"), ("block", "orig")),  # a tie names the sender's entry
        (("allow", "allow"), ("allow", "orig")),
    ]
    for (sender, recipient), (action, side) in cases:
        table = ListTable()
        table.put(entry(SENDER, sender))
        table.put(entry(RECIPIENT, recipient))
        assert decided(table, tx())[::2] == (action, side), (sender, recipient)


def test_an_expired_entry_stops_applying_and_the_other_side_decides() -> None:
    table = ListTable()
    table.put(entry(SENDER, "allow", expires=NOW + timedelta(hours=1)))
    table.put(entry(RECIPIENT, "review", expires=NOW + timedelta(hours=2)))
    assert decided(table, tx()) == ("review", RECIPIENT, "dest")
    assert decided(table, tx(dest="C9")) == ("allow", SENDER, "orig")
    later = NOW + timedelta(hours=1)
    assert decided(table, tx(dest="C9"), later) is None, "expired at its expiry"
    assert decided(table, tx(), later) == ("review", RECIPIENT, "dest")
    assert decided(table, tx(), NOW + timedelta(hours=3)) is None
    assert table.counts(later) == {"block": 0, "review": 1, "allow": 0}
    assert [e.account for e in table.in_force(NOW)] == [SENDER, RECIPIENT]


def test_a_tombstone_removes_the_entry_and_matches_name_positions_in_the_batch() -> None:
    table = ListTable()
    table.put(entry(SENDER, "block"))
    batch = [tx("C1", "C2", "a"), tx(SENDER, "C2", "b"), tx("C3", SENDER, "c")]
    assert [i for i, _ in table.matches(batch, NOW.timestamp())] == [1, 2]
    key = SENDER.encode()
    assert parse_list_record(key, None) is None, "a tombstone"
    removed = table.remove(SENDER)
    assert removed is not None and removed.entry.action == "block"
    assert table.matches(batch, NOW.timestamp()) == [] and len(table) == 0


def test_a_record_of_the_lists_topic_becomes_an_entry_or_says_why_not() -> None:
    good = entry(SENDER, "block", expires=NOW + timedelta(days=1))
    value = good.model_dump_json().encode()
    assert parse_list_record(SENDER.encode(), value) == good
    fields, key = orjson.loads(value), SENDER.encode()
    bad = {
        "no_key": (None, value),
        "bad_key": (b"\xff\xfe", value),
        "key_mismatch": (b"C999", value),
        "invalid": (key, b"{not json"),
    }
    invalid_values = [
        orjson.dumps({**fields, "action": "maybe"}),
        orjson.dumps({**fields, "direction": "sideways"}),
        orjson.dumps({k: v for k, v in fields.items() if k != "reason"}),
        orjson.dumps({**fields, "expires_at": "soon"}),
        orjson.dumps([fields]),
        b"",
    ]
    for reason, (k, v) in bad.items():
        parsed = parse_list_record(k, v)
        assert isinstance(parsed, Malformed) and parsed.reason == reason, (reason, parsed)
    for v in invalid_values:
        parsed = parse_list_record(key, v)
        assert isinstance(parsed, Malformed) and parsed.reason == "invalid" and parsed.error, v


def test_time_to_live_accepts_durations_and_refuses_anything_else_in_one_line() -> None:
    assert parse_ttl("24h") == timedelta(hours=24)
    assert parse_ttl("90s") == timedelta(seconds=90)
    assert parse_ttl("1d12h") == timedelta(days=1, hours=12)
    assert parse_ttl(" 2W ") == timedelta(weeks=2)
    for bad in ("soon", "", "24", "h", "-1h", "1.5h", "0m", "99999d", "1h 30m"):
        with pytest.raises(ConfigError) as refused:
            parse_ttl(bad)
        assert "\n" not in str(refused.value) and "--ttl" in str(refused.value)


def test_account_format_and_action_choice_are_checked() -> None:
    settings = Settings()
    assert check_account(" C1305486145 ", settings) == "C1305486145"
    assert check_account("M1979787155", settings) == "M1979787155"
    for bad in ("", "X123", "C", "C12a", "c123", "C1; drop", "C" + "1" * 30):
        with pytest.raises(ConfigError, match="--account"):
            check_account(bad, settings)
    assert chosen_action(True, False, False) == "block"
    assert chosen_action(False, False, True) == "review"
    for flags in ((True, True, False), (False, False, False), (True, True, True)):
        with pytest.raises(ConfigError, match="exactly one of --block, --allow and --review"):
            chosen_action(*flags)
