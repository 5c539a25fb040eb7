"""Render the settings as a Markdown table (for the README and `momoguard config`)."""

from __future__ import annotations

from core.settings import Settings


def env_name(field: str) -> str:
    return f"MOMOGUARD_{field.upper()}"


START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def with_table(readme: str) -> str:
    """The README text with the settings table between its markers brought up to date."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


def markdown_table() -> str:
    """One row per setting: environment variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default in (None, "") else str(default)
        if name == "run_dir":
            shown = ".run"
        cell = f"`{shown}`" if shown else "(unset)"
        rows.append(f"| `{env_name(name)}` | {cell} | {field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    import argparse

    from core.settings import PROJECT_ROOT

    argparse.ArgumentParser(
        description="Regenerate the settings table in README.md from the Settings class."
    ).parse_args()

    readme = PROJECT_ROOT / "README.md"
    readme.write_text(with_table(readme.read_text()))
