"""Read PaySim CSV files (the Kaggle format) in bounded memory, counting malformed rows instead of failing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from momoguard.errors import DataError
from schemas.frame import FRAME_SCHEMA
from schemas.transaction import PAYSIM_COLUMNS, TxType

logger = logging.getLogger(__name__)

# The frame every reader and the generator return: a row id, then the Kaggle columns in header order.
PAYSIM_SCHEMA = FRAME_SCHEMA
MONEY_COLUMNS: tuple[str, ...] = ("amount", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest")
TX_TYPES: tuple[str, ...] = tuple(t.value for t in TxType)

# Keep the first malformed rows for the report; the count stays exact however many there are.
MAX_KEPT_MALFORMED = 1_000
# Log this many malformed rows one by one, then only the summary.
MAX_LOGGED_MALFORMED = 20
# Kaggle lines average ~75 bytes; reading about this many bytes per wanted row keeps one block near one batch.
_BYTES_PER_ROW = 96


@dataclass(frozen=True)
class MalformedRow:
    """A line that is not a valid PaySim row: where it is, why, and its first 200 characters."""

    line: int
    reason: str
    text: str


@dataclass
class ReadReport:
    """What a read found: valid rows, and the malformed ones (all counted, the first ones kept)."""

    path: Path
    rows: int = 0
    malformed: int = 0
    examples: list[MalformedRow] = field(default_factory=list)

    @property
    def malformed_lines(self) -> list[int]:
        """Line numbers (1-based, header = line 1) of the kept malformed rows."""
        return [m.line for m in self.examples]

    def add(self, row: MalformedRow) -> None:
        self.malformed += 1
        if len(self.examples) < MAX_KEPT_MALFORMED:
            self.examples.append(row)

    def summary(self) -> str:
        text = f"{self.path}: {self.rows} rows, {self.malformed} malformed"
        if self.malformed:
            shown = ", ".join(str(n) for n in self.malformed_lines[:10])
            more = " ..." if self.malformed > 10 else ""
            text += f" (lines {shown}{more})"
        return text


def check_header(path: Path) -> None:
    """Raise a one-line DataError unless `path` is a readable file that starts with the Kaggle header."""
    with _open(path) as handle:
        _read_header(handle, path)


def iter_paysim_csv(
    path: Path,
    batch_rows: int = 200_000,
    *,
    report: ReadReport | None = None,
    on_malformed: Callable[[MalformedRow], None] | None = None,
) -> Iterator[pl.DataFrame]:
    """Stream a PaySim CSV as frames of at most `batch_rows` valid rows, in file (= step) order.

    `tx_id` is the data row number (line number - 1), so it is stable whatever else the file holds.
    A malformed line (wrong field count, bad number, unknown type, a step lower than an earlier one) is
    skipped, counted in `report`, passed to `on_malformed` and logged; a wrong header raises DataError.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    report = report if report is not None else ReadReport(Path(path))
    pending: list[pl.DataFrame] = []
    pending_rows = 0
    last_step: int | None = None
    with _open(path) as handle:
        _read_header(handle, path)
        for first_line, lines in _line_blocks(handle, batch_rows * _BYTES_PER_ROW):
            good, bad, last_step = _parse_block(lines, first_line, last_step)
            for row in bad:
                report.add(row)
                if report.malformed <= MAX_LOGGED_MALFORMED:
                    logger.warning("%s line %d skipped: %s", path, row.line, row.reason)
                if on_malformed is not None:
                    on_malformed(row)
            report.rows += good.height
            pending.append(good)
            pending_rows += good.height
            while pending_rows >= batch_rows:
                buffered = pl.concat(pending)
                yield buffered.head(batch_rows)
                rest = buffered.slice(batch_rows)
                pending, pending_rows = [rest], rest.height
    if pending_rows:
        yield pl.concat(pending)
    if report.malformed:
        logger.warning("%s", report.summary())


def load_paysim(path: Path, *, report: ReadReport | None = None) -> pl.DataFrame:
    """A whole PaySim CSV as one frame (for the samples and small files; big files: `iter_paysim_csv`)."""
    batches = list(iter_paysim_csv(path, batch_rows=1_000_000, report=report))
    if not batches:
        return pl.DataFrame(schema=PAYSIM_SCHEMA)
    return pl.concat(batches, rechunk=True)


def _open(path: Path) -> BinaryIO:
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if not path.is_file():
        raise DataError(f"not a file: {path}")
    try:
        return path.open("rb")
    except OSError as error:
        raise DataError(f"cannot open {path}: {error.strerror}") from error


def _read_header(handle: BinaryIO, path: Path) -> None:
    first = handle.readline()
    if not first:
        raise DataError(f"{path} is empty, expected a PaySim CSV")
    header = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    expected = ",".join(PAYSIM_COLUMNS)
    if header != expected:
        shown = header if len(header) <= 80 else header[:77] + "..."
        raise DataError(f"{path} is not a PaySim CSV: header {shown!r}, expected {expected!r}")


def _line_blocks(handle: BinaryIO, block_bytes: int) -> Iterator[tuple[int, list[bytes]]]:
    """Complete lines in blocks of about `block_bytes`, each with the file line number of its first line."""
    line_no = 2  # the header was line 1
    carry = b""
    while True:
        chunk = handle.read(block_bytes)
        if not chunk:
            break
        data = carry + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        lines = data[:cut].split(b"\n")
        yield line_no, lines
        line_no += len(lines)
    if carry:
        # A last line without a newline is still a line (a truncated file shows up here).
        yield line_no, [carry]


def _parse_block(
    lines: list[bytes], first_line: int, last_step: int | None
) -> tuple[pl.DataFrame, list[MalformedRow], int | None]:
    """Valid rows of a block as a PaySim frame, the malformed ones, and the highest step seen so far."""
    raw = pl.Series("raw", lines, dtype=pl.Binary).cast(pl.Utf8, strict=False)
    frame = (
        pl.DataFrame({"raw": raw})
        .with_row_index("line", offset=first_line)
        .with_columns(pl.col("raw").str.strip_chars_end("\r"))
        # Blank lines carry nothing; skipping them is not hiding data.
        .filter(pl.col("raw").is_null() | (pl.col("raw") != ""))
    )
    fields = pl.col("raw").str.split_exact(",", len(PAYSIM_COLUMNS) - 1)
    parsed = frame.with_columns(
        n_fields=pl.col("raw").str.count_matches(",", literal=True) + 1,
        **{name: fields.struct.field(f"field_{i}") for i, name in enumerate(PAYSIM_COLUMNS)},
    ).with_columns(
        pl.col("step").cast(pl.Int32, strict=False).alias("step_num"),
        pl.col("isFraud").cast(pl.Int8, strict=False).alias("isFraud_num"),
        pl.col("isFlaggedFraud").cast(pl.Int8, strict=False).alias("isFlaggedFraud_num"),
        *(pl.col(c).cast(pl.Float64, strict=False).alias(f"{c}_num") for c in MONEY_COLUMNS),
    )
    bad_money = pl.any_horizontal(
        [pl.col(f"{c}_num").is_null() | ~pl.col(f"{c}_num").is_finite() for c in MONEY_COLUMNS]
    )
    reason = (
        pl.when(pl.col("raw").is_null())
        .then(pl.lit("not UTF-8 text"))
        .when(pl.col("n_fields") != len(PAYSIM_COLUMNS))
        .then(pl.format("{} fields, expected {}", pl.col("n_fields"), pl.lit(len(PAYSIM_COLUMNS))))
        .when(pl.col("step_num").is_null() | (pl.col("step_num") < 0))
        .then(pl.format("bad step {}", pl.col("step")))
        .when(~pl.col("type").is_in(TX_TYPES))
        .then(pl.format("unknown type {}", pl.col("type")))
        .when(bad_money)
        .then(pl.lit("a money field is not a finite number"))
        .when(pl.col("amount_num") < 0)
        .then(pl.lit("negative amount"))
        .when((pl.col("nameOrig") == "") | (pl.col("nameDest") == ""))
        .then(pl.lit("empty account name"))
        .when(~pl.col("isFraud_num").is_in([0, 1]) | ~pl.col("isFlaggedFraud_num").is_in([0, 1]))
        .then(pl.lit("isFraud/isFlaggedFraud must be 0 or 1"))
        .otherwise(None)
    )
    checked = parsed.with_columns(reason=reason)

    # A step lower than one before it breaks the step order every consumer relies on: skip that row.
    valid = checked.filter(pl.col("reason").is_null())
    steps = valid["step_num"].to_numpy()
    floor = -1 if last_step is None else last_step
    highest_before = np.maximum.accumulate(np.concatenate([[floor], steps]))[:-1]
    late = steps < highest_before
    if late.any():
        late_rows = valid.filter(pl.Series(late)).with_columns(
            reason=pl.format(
                "step {} after step {} (file not ordered by step)",
                pl.col("step"),
                pl.Series(highest_before[late]),
            )
        )
        valid = valid.filter(pl.Series(~late))
        checked = pl.concat([checked.filter(pl.col("reason").is_not_null()), late_rows]).sort("line")
    else:
        checked = checked.filter(pl.col("reason").is_not_null())
    if steps.size:
        last_step = max(floor, int(steps.max()))

    bad = [
        MalformedRow(line=int(line), reason=str(why), text=(text or "")[:200])
        for line, why, text in checked.select("line", "reason", "raw").iter_rows()
    ]
    good = valid.select(
        tx_id=(pl.col("line") - 1).cast(pl.Utf8),
        step=pl.col("step_num"),
        type=pl.col("type"),
        amount=pl.col("amount_num"),
        nameOrig=pl.col("nameOrig"),
        oldbalanceOrg=pl.col("oldbalanceOrg_num"),
        newbalanceOrig=pl.col("newbalanceOrig_num"),
        nameDest=pl.col("nameDest"),
        oldbalanceDest=pl.col("oldbalanceDest_num"),
        newbalanceDest=pl.col("newbalanceDest_num"),
        isFraud=pl.col("isFraud_num"),
        isFlaggedFraud=pl.col("isFlaggedFraud_num"),
    )
    return good.cast(PAYSIM_SCHEMA), bad, last_step  # type: ignore[arg-type]
