"""Tables for the terminal that keep every number whole, at any width and when piped.

A table is drawn when it fits the console's width: numbers never wrap, text and headers wrap between words.
When even that does not fit, each row is printed as a block of `header: value` lines. Commands that print a
table also offer `--json` for scripts; this module is only for people.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """A column: its header, and whether its cells are text that may wrap between words (else numbers)."""

    header: str
    text: bool = False


def print_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    key_columns: int = 1,
) -> None:
    """Print `rows` (cells may hold rich markup) as a table if it fits `console.width`, else as blocks.

    In the blocks the first `key_columns` cells name the row and the others follow one per line.
    """
    cells = [[Text.from_markup(cell) for cell in row] for row in rows]
    widths = column_widths(columns, cells, console.width)
    if widths is not None:
        console.print(_table(columns, cells, widths, title))
        return
    if title:
        console.print(title, soft_wrap=True, highlight=False)
    for row in cells:
        keys = zip(columns[:key_columns], row[:key_columns], strict=True)
        name = Text(", ").join(Text.assemble(f"{column.header} ", cell) for column, cell in keys)
        console.print(name, soft_wrap=True)
        for column, cell in zip(columns[key_columns:], row[key_columns:], strict=True):
            console.print(Text.assemble(f"  {column.header}: ", cell), soft_wrap=True)


def column_widths(columns: Sequence[Column], rows: Sequence[Sequence[Text]], width: int) -> list[int] | None:
    """Content width of each column so the table fits `width` with no number cut, or None if it cannot."""

    def longest(texts: list[str]) -> int:
        return max((cell_len(t) for t in texts), default=0)

    natural, least = [], []
    for i, column in enumerate(columns):
        values = [row[i].plain for row in rows]
        words = column.header.split() + ([w for v in values for w in v.split()] if column.text else [])
        natural.append(max(longest(values), longest([column.header]), 1))
        least.append(max(longest(words), 1) if column.text else max(longest(values), longest(words), 1))
    room = width - _overhead(len(columns))
    if sum(least) > room:
        return None
    widths = list(natural)
    # Shrink the widest shrinkable column one cell at a time: numbers keep their width, words stay whole.
    while sum(widths) > room:
        i = max(range(len(widths)), key=lambda j: (widths[j] - least[j] > 0, widths[j]))
        widths[i] -= 1
    return widths


def _table(
    columns: Sequence[Column], rows: Sequence[Sequence[Text]], widths: Sequence[int], title: str | None
) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False, pad_edge=False)
    for column, width in zip(columns, widths, strict=True):
        table.add_column(column.header, justify="left" if column.text else "right", width=width, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _overhead(n_columns: int) -> int:
    """Cells a table of `n_columns` adds to its content (padding and rules), measured on a rendered one."""
    probe = _table([Column("x")] * n_columns, [[Text("x")] * n_columns], [1] * n_columns, None)
    out = Console(file=io.StringIO(), width=10_000, color_system=None)
    out.print(probe)
    return max(len(line) for line in out.file.getvalue().splitlines()) - n_columns  # type: ignore[attr-defined]
