"""The PaySim reader: both real kaggle_samples, any row order, gzip and Parquet, batches, truncated files, bad rows."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import polars as pl
import pytest

from core.errors import DataError, MomoGuardError
from paysim.generator import write_paysim
from paysim.reader import (
    PAYSIM_SCHEMA,
    MalformedRow,
    ReadReport,
    SkippedRowsError,
    check_data_file,
    check_skipped,
    data_format,
    iter_paysim,
    load_paysim,
)
from schemas.transaction import PAYSIM_COLUMNS
from tests.paysim.conftest import ENRICHED_SAMPLE, HEAD_SAMPLE


def test_head_sample_reads_every_row_with_the_contract_dtypes() -> None:
    report = ReadReport(HEAD_SAMPLE)
    frame = load_paysim(HEAD_SAMPLE, report=report)
    assert frame.schema == pl.Schema(PAYSIM_SCHEMA)
    assert frame.columns == ["tx_id", *PAYSIM_COLUMNS]
    assert frame.height == report.rows == 2688
    assert report.malformed == 0
    assert frame["tx_id"].to_list()[:3] == ["1", "2", "3"]
    assert frame["tx_id"].n_unique() == frame.height
    assert frame["isFraud"].sum() == 16
    first = frame.row(0, named=True)
    assert first["type"] == "PAYMENT" and first["amount"] == 9839.64 and first["oldbalanceOrg"] == 170136.0


def test_java_style_numbers_are_read_as_numbers() -> None:
    frame = load_paysim(HEAD_SAMPLE)
    # Line 86 of the file: ...,C1590550415,900180.0,1.916920493E7,0,0
    assert 19169204.93 in frame["newbalanceDest"].to_list()


def test_enriched_sample_with_bare_zeros_and_excel_exponents() -> None:
    frame = load_paysim(ENRICHED_SAMPLE)
    assert frame.height == 7557
    assert frame["isFraud"].sum() == 617
    assert frame["step"].min() == 45 and frame["step"].max() == 95
    # Written "1.00E+07" in that file.
    assert (frame["amount"] == 10_000_000.0).sum() > 0


def test_batches_are_bounded_in_step_order_and_add_up_to_the_file() -> None:
    batches = list(iter_paysim(ENRICHED_SAMPLE, batch_rows=1000))
    assert [b.height for b in batches] == [1000] * 7 + [557]
    joined = pl.concat(batches)
    assert joined.equals(load_paysim(ENRICHED_SAMPLE))
    steps = joined["step"].to_numpy()
    assert (steps[1:] >= steps[:-1]).all()


def _write(path: Path, lines: list[str], ending: str = "\n") -> Path:
    path.write_text(ending.join(lines) + ending)
    return path


def test_truncated_file_loses_only_its_cut_row(tmp_path: Path) -> None:
    data = HEAD_SAMPLE.read_bytes()
    cut = tmp_path / "truncated.csv"
    cut.write_bytes(data[: len(data) // 2])
    lines = cut.read_bytes().count(b"\n")  # complete lines, header included
    report = ReadReport(cut)
    frame = load_paysim(cut, report=report)
    assert frame.height == lines - 1
    assert report.malformed == 1
    assert report.malformed_lines == [lines + 1]
    assert "fields, expected 11" in report.examples[0].reason


def test_bad_rows_are_counted_reported_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = HEAD_SAMPLE.read_text().splitlines()[:50]
    lines[5] = "1,PAYMENT,abc,C1,1.0,1.0,M2,0.0,0.0,0,0"  # not a number
    lines[7] = "1,PAYMENT,1.0,C1"  # too few fields
    lines[9] = "1,REFUND,1.0,C1,1.0,1.0,M2,0.0,0.0,0,0"  # no such type
    lines[11] = "1,PAYMENT,1.0,C1,1.0,1.0,M2,0.0,0.0,2,0"  # label out of range
    lines[13] = "x,PAYMENT,1.0,C1,1.0,1.0,M2,0.0,0.0,0,0"  # step not a number
    lines.append("0,PAYMENT,1.0,C1,1.0,1.0,M2,0.0,0.0,0,0")  # step goes back: a valid row all the same
    path = _write(tmp_path / "bad.csv", lines)
    seen: list[MalformedRow] = []
    report = ReadReport(path)
    with caplog.at_level(logging.WARNING, logger="paysim.reader"):
        frame = pl.concat(list(iter_paysim(path, report=report, on_malformed=seen.append)))

    assert report.malformed == 5 and len(seen) == 5
    assert report.malformed_lines == [6, 8, 10, 12, 14]
    assert frame.height == report.rows == 45
    # The good rows keep their own row numbers as ids.
    assert "5" not in frame["tx_id"].to_list() and "6" in frame["tx_id"].to_list()
    assert frame["step"].to_list()[-1] == 0
    reasons = " | ".join(m.reason for m in seen)
    for fragment in ("finite number", "4 fields", "unknown type REFUND", "0 or 1", "bad step x"):
        assert fragment in reasons
    assert "line 6 skipped" in caplog.text and "5 skipped as malformed" in caplog.text
    assert report.to_dict()["first_skipped"][0] == {"line": 6, "reason": "a money field is not a finite number"}


def test_windows_line_endings_read_the_same(tmp_path: Path) -> None:
    lines = HEAD_SAMPLE.read_text().splitlines()[:101]
    crlf = load_paysim(_write(tmp_path / "crlf.csv", lines, ending="\r\n"))
    lf = load_paysim(_write(tmp_path / "lf.csv", lines))
    assert crlf.height == 100 and crlf.equals(lf)


def test_a_file_that_is_not_paysim_is_a_one_line_error(tmp_path: Path) -> None:
    other = _write(tmp_path / "other.csv", ["id,amount,label", "1,10.0,0"])
    with pytest.raises(DataError) as error:
        load_paysim(other)
    message = str(error.value)
    assert "not a PaySim CSV" in message and "\n" not in message
    assert isinstance(error.value, MomoGuardError)


@pytest.mark.parametrize("make", ["missing", "empty", "folder"])
def test_missing_empty_or_folder_is_a_data_error(tmp_path: Path, make: str) -> None:
    path = tmp_path / "data.csv"
    if make == "empty":
        path.write_text("")
    elif make == "folder":
        path.mkdir()
    with pytest.raises(DataError):
        list(iter_paysim(path))


def test_header_only_file_gives_an_empty_frame(tmp_path: Path) -> None:
    frame = load_paysim(_write(tmp_path / "header.csv", [",".join(PAYSIM_COLUMNS)]))
    assert frame.height == 0 and frame.schema == pl.Schema(PAYSIM_SCHEMA)


def _shuffled(kaggle_samples: pl.DataFrame) -> pl.DataFrame:
    return kaggle_samples.sample(fraction=1.0, shuffle=True, seed=3)


def test_a_file_in_any_order_is_read_whole(tmp_path: Path, kaggle_samples: pl.DataFrame) -> None:
    path = tmp_path / "shuffled.csv"
    write_paysim(_shuffled(kaggle_samples), path)
    report = ReadReport(path)
    in_file_order = load_paysim(path, report=report)
    assert in_file_order.height == report.rows == kaggle_samples.height == 10_245 and report.malformed == 0
    by_step = load_paysim(path, by_step=True)
    steps = by_step["step"].to_numpy()
    assert (steps[1:] >= steps[:-1]).all()
    # Stable: rows of one step keep their file order (their tx_ids, the line numbers, ascending).
    first_step = by_step.filter(pl.col("step") == 1)["tx_id"].cast(pl.Int64).to_numpy()
    assert (first_step[1:] > first_step[:-1]).all()


@pytest.mark.parametrize("name", ["rows.csv.gz", "rows.parquet", "gzip-named.csv", "parquet-named.csv"])
def test_gzip_and_parquet_read_as_the_csv_does_by_content_not_name(
    tmp_path: Path, kaggle_samples: pl.DataFrame, name: str
) -> None:
    rows = _shuffled(kaggle_samples)
    write_paysim(rows, tmp_path / "rows.csv")
    written = tmp_path / ("rows.csv.gz" if "gz" in name or "gzip" in name else "rows.parquet")
    write_paysim(rows, written)
    path = written.rename(tmp_path / name)
    assert data_format(path) == ("parquet" if "parquet" in name else "csv.gz")
    check_data_file(path)
    report = ReadReport(path)
    frame = load_paysim(path, report=report)
    assert report.malformed == 0
    assert frame.drop("tx_id").equals(load_paysim(tmp_path / "rows.csv").drop("tx_id"))


def test_bad_parquet_rows_are_counted_by_row_number(tmp_path: Path, kaggle_samples: pl.DataFrame) -> None:
    rows = kaggle_samples.head(20).with_columns(step=pl.col("step").cast(pl.Float64))
    rows = rows.with_columns(
        step=pl.when(pl.int_range(pl.len()) == 2).then(1.5).otherwise(pl.col("step")),
        amount=pl.when(pl.int_range(pl.len()) == 4).then(-1.0).otherwise(pl.col("amount")),
        type=pl.when(pl.int_range(pl.len()) == 6).then(None).otherwise(pl.col("type")),
    )
    path = tmp_path / "bad.parquet"
    rows.write_parquet(path)
    report = ReadReport(path)
    frame = load_paysim(path, report=report)
    assert (frame.height, report.malformed, report.unit) == (17, 3, "row")
    assert [(m.line, m.reason) for m in report.examples] == [
        (3, "bad step 1.5"),
        (5, "negative amount"),
        (7, "unknown type (empty)"),
    ]
    assert frame["tx_id"].to_list()[:2] == rows["tx_id"].to_list()[:2]  # the file's own ids


def test_a_parquet_file_without_the_columns_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pl.DataFrame({"id": [1], "label": [0]}).write_parquet(path)
    with pytest.raises(DataError, match="not a PaySim Parquet file: no column"):
        load_paysim(path)


def test_a_cut_gzip_file_is_a_one_line_error(tmp_path: Path) -> None:
    whole = gzip.compress(HEAD_SAMPLE.read_bytes())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cannot read .* to the end") as error:
        load_paysim(path)
    assert "\n" not in str(error.value)


def test_skipped_rows_beyond_the_allowance_are_an_error_that_counts_them(tmp_path: Path) -> None:
    lines = HEAD_SAMPLE.read_text().splitlines()[:11]
    lines[3] = "1,PAYMENT,abc,C1,1.0,1.0,M2,0.0,0.0,0,0"
    report = ReadReport(_write(tmp_path / "one-bad.csv", lines))
    load_paysim(report.path, report=report)
    check_skipped([report], max_skipped=1)
    with pytest.raises(SkippedRowsError) as error:
        check_skipped([report], max_skipped=0)
    message = str(error.value)
    assert message.startswith("1 of 10 rows skipped as malformed") and "line 4" in message
    assert "--max-skipped 1" in message and "\n" not in message
