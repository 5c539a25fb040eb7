"""Read PaySim data files (Kaggle CSV, gzipped CSV, Parquet) in bounded memory, counting malformed rows.

Every command that takes a data file reads it here. A file is read whole whatever its order; callers that
need time order ask for it (`load_paysim(..., by_step=True)`). A row that is not a valid PaySim row is
skipped, and every skip is counted in the `ReadReport` the caller shows in its result.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import polars as pl

from core.errors import DataError
from schemas.frame import FRAME_SCHEMA
from schemas.transaction import PAYSIM_COLUMNS, TX_TYPES

logger = logging.getLogger(__name__)

# The frame every reader and the generator return: a row id, then the Kaggle columns in header order.
PAYSIM_SCHEMA = FRAME_SCHEMA
MONEY_COLUMNS: tuple[str, ...] = ("amount", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest")
DataFormat = Literal["csv", "csv.gz", "parquet"]

# Keep the first malformed rows for the report; the count stays exact however many there are.
MAX_KEPT_MALFORMED = 1_000
# Log this many malformed rows one by one, then only the summary.
MAX_LOGGED_MALFORMED = 20
# Kaggle lines average ~75 bytes; reading about this many bytes per wanted row keeps one block near one batch.
_BYTES_PER_ROW = 96
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_STEP_MAX = 2**31 - 1


@dataclass(frozen=True)
class MalformedRow:
    """A row that is not a valid PaySim row: where it is (file line, or Parquet row), why, its first 200 chars."""

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
    unit: str = "line"  # what MalformedRow.line counts: a line of a CSV (header = 1) or a row of a Parquet file

    @property
    def malformed_lines(self) -> list[int]:
        """Line numbers (1-based, header = line 1) of the kept malformed rows."""
        return [m.line for m in self.examples]

    def add(self, row: MalformedRow) -> None:
        self.malformed += 1
        if len(self.examples) < MAX_KEPT_MALFORMED:
            self.examples.append(row)

    def summary(self) -> str:
        text = f"{self.path}: {self.rows:,} rows read, {self.malformed:,} skipped as malformed"
        if self.malformed:
            first = self.examples[0]
            more = f"; {self.unit}s {', '.join(str(n) for n in self.malformed_lines[:10])}"
            more += " ..." if self.malformed > 10 else ""
            text += f" (first: {self.unit} {first.line}, {first.reason}{more})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The report as a command's JSON shows it: counts, and the first skipped rows with their reasons."""
        return {
            "path": str(self.path),
            "rows": self.rows,
            "skipped": self.malformed,
            "first_skipped": [{self.unit: m.line, "reason": m.reason} for m in self.examples[:10]],
        }


class SkippedRowsError(DataError):
    """Data files hold more malformed rows than allowed; the command reported them before failing."""


def check_skipped(reports: list[ReadReport], max_skipped: int) -> None:
    """A one-line SkippedRowsError when the files hold more malformed rows than `max_skipped` together.

    A model trained or measured, or a load test run, on part of a file says nothing about the rest, so by
    default (0) any skipped row fails the command, once it has reported what it read.
    """
    skipped = sum(r.malformed for r in reports)
    if skipped > max_skipped:
        read = sum(r.rows for r in reports)
        worst = max(reports, key=lambda r: r.malformed)
        raise SkippedRowsError(
            f"{skipped:,} of {read + skipped:,} rows skipped as malformed ({worst.summary()}); "
            f"fix the data, or allow them with --max-skipped {skipped} (MOMOGUARD_MAX_SKIPPED_ROWS)"
        )


def data_format(path: Path) -> DataFormat:
    """The format of a data file, by its first bytes (so a misnamed file is read right); DataError if unreadable."""
    with _open_raw(path) as handle:
        magic = handle.read(4)
    if magic.startswith(_GZIP_MAGIC):
        return "csv.gz"
    if magic == _PARQUET_MAGIC:
        return "parquet"
    return "csv"


def check_data_file(path: Path) -> DataFormat:
    """Raise a one-line DataError unless `path` is a readable PaySim file: a CSV (maybe gzipped) that starts
    with the Kaggle header, or a Parquet file with the Kaggle columns. Cheap: reads the header only."""
    kind = data_format(path)
    if kind == "parquet":
        _parquet_file(path)
    else:
        with _open_text(path, kind) as handle:
            _read_header(handle, path)
    return kind


def iter_paysim(
    path: Path,
    batch_rows: int = 200_000,
    *,
    report: ReadReport | None = None,
    on_malformed: Callable[[MalformedRow], None] | None = None,
) -> Iterator[pl.DataFrame]:
    """Stream a PaySim file (CSV, gzipped CSV or Parquet) as frames of at most `batch_rows` valid rows, in file order.

    `tx_id` is the data row number (line number - 1 in a CSV), or a Parquet file's own `tx_id` column.
    A malformed row (wrong field count, bad number, unknown type, ...) is skipped, counted in `report`,
    passed to `on_malformed` and logged; a file that is not PaySim data raises DataError.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    path = Path(path)
    report = report if report is not None else ReadReport(path)
    kind = data_format(path)
    blocks = _parquet_blocks(path, batch_rows, report) if kind == "parquet" else _csv_blocks(path, kind, batch_rows)
    pending: list[pl.DataFrame] = []
    pending_rows = 0
    for good, bad in blocks:
        for row in bad:
            report.add(row)
            if report.malformed <= MAX_LOGGED_MALFORMED:
                logger.warning("%s %s %d skipped: %s", path, report.unit, row.line, row.reason)
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


def load_paysim(path: Path, *, report: ReadReport | None = None, by_step: bool = False) -> pl.DataFrame:
    """A whole PaySim file as one frame, in file order, or ordered by step (stable) with `by_step`."""
    batches = list(iter_paysim(path, batch_rows=1_000_000, report=report))
    if not batches:
        return pl.DataFrame(schema=PAYSIM_SCHEMA)
    frame = pl.concat(batches, rechunk=True)
    return frame.sort("step", maintain_order=True) if by_step else frame


def _open_raw(path: Path) -> BinaryIO:
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if not path.is_file():
        raise DataError(f"not a file: {path}")
    try:
        return path.open("rb")
    except OSError as error:
        raise DataError(f"cannot open {path}: {error.strerror}") from error


def _open_text(path: Path, kind: DataFormat) -> BinaryIO:
    handle = _open_raw(path)  # its checks and errors, for a gzipped file too
    if kind != "csv.gz":
        return handle
    handle.close()
    return gzip.open(path, "rb")  # type: ignore[return-value]


def _read_header(handle: BinaryIO, path: Path) -> None:
    try:
        first = handle.readline()
    except (OSError, EOFError) as error:  # a corrupt or truncated gzip stream
        raise DataError(f"cannot read {path}: {error}") from error
    if not first:
        raise DataError(f"{path} is empty, expected a PaySim CSV")
    header = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    expected = ",".join(PAYSIM_COLUMNS)
    if header != expected:
        shown = header if len(header) <= 80 else header[:77] + "..."
        raise DataError(f"{path} is not a PaySim CSV: header {shown!r}, expected {expected!r}")


def _csv_blocks(path: Path, kind: DataFormat, batch_rows: int) -> Iterator[tuple[pl.DataFrame, list[MalformedRow]]]:
    with _open_text(path, kind) as handle:
        _read_header(handle, path)
        try:
            for first_line, lines in _line_blocks(handle, batch_rows * _BYTES_PER_ROW):
                yield _check(_parse_csv_block(lines, first_line))
        except (OSError, EOFError) as error:  # a gzip stream cut short or corrupt: say so, keep what was read
            raise DataError(f"cannot read {path} to the end: {error}") from error


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


def _parse_csv_block(lines: list[bytes], first_line: int) -> pl.DataFrame:
    """The lines of a block as typed columns (null where a field is not a number), with CSV-level problems."""
    raw = pl.Series("raw", lines, dtype=pl.Binary).cast(pl.Utf8, strict=False)
    frame = (
        pl.DataFrame({"raw": raw})
        .with_row_index("line", offset=first_line)
        .with_columns(pl.col("raw").str.strip_chars_end("\r"))
        # Blank lines carry nothing; skipping them is not hiding data.
        .filter(pl.col("raw").is_null() | (pl.col("raw") != ""))
    )
    fields = pl.col("raw").str.split_exact(",", len(PAYSIM_COLUMNS) - 1)
    n_fields = pl.col("raw").str.count_matches(",", literal=True) + 1
    parsed = frame.with_columns(
        n_fields=n_fields, **{name: fields.struct.field(f"field_{i}") for i, name in enumerate(PAYSIM_COLUMNS)}
    )
    return parsed.select(
        "line",
        text=pl.col("raw"),
        problem=pl.when(pl.col("raw").is_null())
        .then(pl.lit("not UTF-8 text"))
        .when(pl.col("n_fields") != len(PAYSIM_COLUMNS))
        .then(pl.format("{} fields, expected {}", pl.col("n_fields"), pl.lit(len(PAYSIM_COLUMNS))))
        .otherwise(None),
        tx_id=(pl.col("line") - 1).cast(pl.Utf8),
        step_text=pl.col("step"),
        step=pl.col("step").cast(pl.Int32, strict=False),
        type=pl.col("type"),
        nameOrig=pl.col("nameOrig"),
        nameDest=pl.col("nameDest"),
        isFraud=pl.col("isFraud").cast(pl.Int8, strict=False),
        isFlaggedFraud=pl.col("isFlaggedFraud").cast(pl.Int8, strict=False),
        **{c: pl.col(c).cast(pl.Float64, strict=False) for c in MONEY_COLUMNS},
    )


def _parquet_file(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"cannot read {path} as Parquet: {str(error).splitlines()[0]}") from error
    missing = [c for c in PAYSIM_COLUMNS if c not in parquet.schema_arrow.names]
    if missing:
        raise DataError(f"{path} is not a PaySim Parquet file: no column(s) {', '.join(missing)}")
    return parquet


def _parquet_blocks(
    path: Path, batch_rows: int, report: ReadReport
) -> Iterator[tuple[pl.DataFrame, list[MalformedRow]]]:
    report.unit = "row"
    parquet = _parquet_file(path)
    has_id = "tx_id" in parquet.schema_arrow.names
    columns = ["tx_id", *PAYSIM_COLUMNS] if has_id else list(PAYSIM_COLUMNS)
    first_row = 1
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_row_index("line", offset=first_row)
        first_row += frame.height
        yield _check(_typed_parquet_block(frame, has_id))


def _typed_parquet_block(frame: pl.DataFrame, has_id: bool) -> pl.DataFrame:
    """A Parquet batch as the same typed columns as a CSV block: a value of the wrong kind becomes null."""

    def whole(name: str, low: int, high: int, dtype: pl.DataType) -> pl.Expr:
        # Through Float64, so 1.5 is refused rather than cut to 1, and text columns are parsed.
        value = pl.col(name).cast(pl.Float64, strict=False)
        ok = value.is_finite() & (value == value.floor()) & value.is_between(low, high)
        return pl.when(ok).then(value).otherwise(None).cast(dtype)

    return frame.select(
        "line",
        text=pl.concat_str(
            [pl.col(c).cast(pl.Utf8, strict=False).fill_null("") for c in PAYSIM_COLUMNS], separator=","
        ),
        problem=pl.lit(None, dtype=pl.Utf8),
        tx_id=pl.col("tx_id").cast(pl.Utf8, strict=False) if has_id else pl.col("line").cast(pl.Utf8),
        step_text=pl.col("step").cast(pl.Utf8, strict=False),
        step=whole("step", 0, _STEP_MAX, pl.Int32()),
        type=pl.col("type").cast(pl.Utf8, strict=False),
        nameOrig=pl.col("nameOrig").cast(pl.Utf8, strict=False),
        nameDest=pl.col("nameDest").cast(pl.Utf8, strict=False),
        isFraud=whole("isFraud", 0, 1, pl.Int8()),
        isFlaggedFraud=whole("isFlaggedFraud", 0, 1, pl.Int8()),
        **{c: pl.col(c).cast(pl.Float64, strict=False) for c in MONEY_COLUMNS},
    )


def _check(typed: pl.DataFrame) -> tuple[pl.DataFrame, list[MalformedRow]]:
    """Valid rows as a PaySim frame, and the malformed ones with the first reason each fails."""
    bad_money = pl.any_horizontal([pl.col(c).is_null() | ~pl.col(c).is_finite() for c in MONEY_COLUMNS])
    reason = (
        pl.when(pl.col("problem").is_not_null())
        .then(pl.col("problem"))
        .when(pl.col("step").is_null() | (pl.col("step") < 0))
        .then(pl.format("bad step {}", pl.col("step_text").fill_null("(empty)")))
        .when(pl.col("type").is_null() | ~pl.col("type").is_in(TX_TYPES))
        .then(pl.format("unknown type {}", pl.col("type").fill_null("(empty)")))
        .when(bad_money)
        .then(pl.lit("a money field is not a finite number"))
        .when(pl.col("amount") < 0)
        .then(pl.lit("negative amount"))
        .when(pl.col("nameOrig").fill_null("").eq("") | pl.col("nameDest").fill_null("").eq(""))
        .then(pl.lit("empty account name"))
        .when(
            ~pl.col("isFraud").is_in([0, 1]).fill_null(False) | ~pl.col("isFlaggedFraud").is_in([0, 1]).fill_null(False)
        )
        .then(pl.lit("isFraud/isFlaggedFraud must be 0 or 1"))
        .otherwise(None)
    )
    checked = typed.with_columns(reason=reason)
    bad = [
        MalformedRow(line=int(line), reason=str(why), text=(text or "")[:200])
        for line, why, text in checked.filter(pl.col("reason").is_not_null())
        .select("line", "reason", "text")
        .iter_rows()
    ]
    good = checked.filter(pl.col("reason").is_null()).select(list(PAYSIM_SCHEMA))
    return good.cast(PAYSIM_SCHEMA), bad  # type: ignore[arg-type]
