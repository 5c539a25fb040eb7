"""Write the JSON Schemas of the wire models to files, for operators validating in other languages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.label import Label
from schemas.lists import ListEntry
from schemas.transaction import ALIASES, EARLIEST_EVENT_TIME, LATEST_EVENT_TIME, Transaction
from schemas.verdict import VERDICT

SCHEMA_DIR = Path(__file__).resolve().parent
WIRE_FORMATS = ("transaction", "verdict", "list_entry", "label")


def schema_of(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a message on the wire: what the scorer reads, what it writes, a list
    entry (what `momoguard lists` publishes), or a label (what analysts and chargeback systems publish)."""
    if name == "transaction":
        schema = Transaction.model_json_schema(mode="validation")
        _with_paysim_names(schema)
    elif name == "list_entry":
        schema = ListEntry.model_json_schema(mode="validation")
    elif name == "label":
        schema = Label.model_json_schema(mode="validation")
    else:
        schema = VERDICT.json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{name}.schema.json"
    return schema


def _with_paysim_names(schema: dict[str, Any]) -> None:
    """Each field with a PaySim name takes either name, never both, as the scorer's parser does.

    pydantic describes fields by their snake_case names only; a message written with PaySim's column names
    (the Kaggle CSV's) is as valid. Duplicate keys, which the parser also refuses, are beyond JSON Schema.
    """
    properties = schema["properties"]
    required = schema["required"]
    rules: list[dict[str, Any]] = []
    for snake, paysim in ALIASES:
        properties[paysim] = {
            **properties[snake],
            "description": f"{properties[snake]['description']} (PaySim's name for {snake})",
        }
        properties[paysim].pop("title", None)
        if snake in required:
            required.remove(snake)
            rules.append({"oneOf": [{"required": [snake]}, {"required": [paysim]}]})
        else:
            rules.append({"not": {"required": [snake, paysim]}})
    schema["allOf"] = rules
    event_time = properties["event_time"]
    event_time["anyOf"].insert(
        1,
        {
            "type": "number",
            "minimum": EARLIEST_EVENT_TIME.timestamp(),
            "exclusiveMaximum": LATEST_EVENT_TIME.timestamp(),
            "description": "seconds since the epoch",
        },
    )


def rendered() -> dict[Path, str]:
    """File path -> the exact text that file should hold."""
    return {
        SCHEMA_DIR / f"{name}.schema.json": json.dumps(schema_of(name), indent=2, sort_keys=True) + "\n"
        for name in WIRE_FORMATS
    }


def write() -> list[Path]:
    """Write every schema file; return the paths written."""
    written = []
    for path, text in rendered().items():
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write():
        print(f"wrote {written_path}")  # noqa: T201 - a script's report
