"""The Kaggle CSV reader: both real samples, batches, truncated files, bad rows, wrong files."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest

from momoguard.errors import DataError, MomoGuardError
from replay.paysim import PAYSIM_SCHEMA, MalformedRow, ReadReport, iter_paysim_csv, load_paysim
from schemas.transaction import PAYSIM_COLUMNS
from tests.replay.conftest import ENRICHED_SAMPLE, HEAD_SAMPLE


def test_head_sample_reads_every_row_with_the_contract_dtypes(samples_dir: Path) -> None:
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


def test_java_style_numbers_are_read_as_numbers(samples_dir: Path) -> None:
    frame = load_paysim(HEAD_SAMPLE)
    # Line 86 of the file: ...,C1590550415,900180.0,1.916920493E7,0,0
    assert 19169204.93 in frame["newbalanceDest"].to_list()


def test_enriched_sample_with_bare_zeros_and_excel_exponents(samples_dir: Path) -> None:
    frame = load_paysim(ENRICHED_SAMPLE)
    assert frame.height == 7557
    assert frame["isFraud"].sum() == 617
    assert frame["step"].min() == 45 and frame["step"].max() == 95
    # Written "1.00E+07" in that file.
    assert (frame["amount"] == 10_000_000.0).sum() > 0


def test_batches_are_bounded_in_step_order_and_add_up_to_the_file(samples_dir: Path) -> None:
    batches = list(iter_paysim_csv(ENRICHED_SAMPLE, batch_rows=1000))
    assert [b.height for b in batches] == [1000] * 7 + [557]
    joined = pl.concat(batches)
    assert joined.equals(load_paysim(ENRICHED_SAMPLE))
    steps = joined["step"].to_numpy()
    assert (steps[1:] >= steps[:-1]).all()


def _write(path: Path, lines: list[str], ending: str = "\n") -> Path:
    path.write_text(ending.join(lines) + ending)
    return path


def test_truncated_file_loses_only_its_cut_row(tmp_path: Path, samples_dir: Path) -> None:
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


def test_bad_rows_are_counted_reported_and_skipped(
    tmp_path: Path, samples_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = HEAD_SAMPLE.read_text().splitlines()[:50]
    lines[5] = "1,PAYMENT,abc,C1,1.0,1.0,M2,0.0,0.0,0,0"  # not a number
    lines[7] = "1,PAYMENT,1.0,C1"  # too few fields
    lines[9] = "1,REFUND,1.0,C1,1.0,1.0,M2,0.0,0.0,0,0"  # no such type
    lines[11] = "1,PAYMENT,1.0,C1,1.0,1.0,M2,0.0,0.0,2,0"  # label out of range
    lines.append("0,PAYMENT,1.0,C1,1.0,1.0,M2,0.0,0.0,0,0")  # step goes back
    path = _write(tmp_path / "bad.csv", lines)
    seen: list[MalformedRow] = []
    report = ReadReport(path)
    with caplog.at_level(logging.WARNING, logger="replay.paysim"):
        frame = pl.concat(list(iter_paysim_csv(path, report=report, on_malformed=seen.append)))

    assert report.malformed == 5 and len(seen) == 5
    assert report.malformed_lines == [6, 8, 10, 12, 51]
    assert frame.height == report.rows == 45
    # The good rows keep their own row numbers as ids.
    assert "5" not in frame["tx_id"].to_list() and "6" in frame["tx_id"].to_list()
    reasons = " | ".join(m.reason for m in seen)
    for fragment in ("finite number", "4 fields", "unknown type REFUND", "0 or 1", "not ordered by step"):
        assert fragment in reasons
    assert "line 6 skipped" in caplog.text and "5 malformed" in caplog.text


def test_windows_line_endings_read_the_same(tmp_path: Path, samples_dir: Path) -> None:
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
        list(iter_paysim_csv(path))


def test_header_only_file_gives_an_empty_frame(tmp_path: Path) -> None:
    frame = load_paysim(_write(tmp_path / "header.csv", [",".join(PAYSIM_COLUMNS)]))
    assert frame.height == 0 and frame.schema == pl.Schema(PAYSIM_SCHEMA)
