"""Where the log lives: Parquet parts under one folder, partitioned by day, each written whole or not at all.

    <log dir>/scored/day=2026-12-01/part-20261201T101500-1a2b3c4d.parquet   scored transactions
    <log dir>/labels/day=2026-12-01/part-....parquet                        labels
    <log dir>/rejected/day=2026-12-01/part-....parquet                      messages the sink could not read

A part is written to a `.tmp` name, fsynced, renamed, and its folder fsynced: once `write_part` returns, the
part survives a crash or a power cut, which is when the sink may commit the offsets of its rows. Readers see
only whole `.parquet` parts; a `.tmp` left by a crash holds rows whose offsets were never committed, so they
are read again from Kafka and the leftover is removed at the sink's next start.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SCORED = "scored"
LABELS = "labels"
REJECTED = "rejected"
DATASETS = (SCORED, LABELS, REJECTED)


class LogStore:
    """The log folder (`Settings.feedback_dir`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, dataset: str) -> Path:
        return self.root / dataset

    def parts(self, dataset: str) -> list[Path]:
        """Every whole part of a dataset, oldest day first."""
        return sorted(self.folder(dataset).glob("day=*/*.parquet"))

    def write_part(self, dataset: str, day: str, table: pa.Table) -> Path:
        """Write `table` as one new part of `dataset` for `day` (YYYY-MM-DD), durably; returns its path."""
        folder = self.folder(dataset) / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        final = folder / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        partial = final.with_name(final.name + ".tmp")
        with partial.open("wb") as out:
            pq.write_table(table, out, compression="zstd")
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, final)
        _fsync_folder(folder)
        return final

    def remove_partials(self) -> list[Path]:
        """Delete `.tmp` parts a crash left behind (their rows' offsets were never committed)."""
        removed = sorted(self.root.glob("*/day=*/*.parquet.tmp"))
        for path in removed:
            path.unlink(missing_ok=True)
        return removed


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is: fsync the folder itself (and its parent, which may
    # have just gained the day's folder).
    for path in (folder, folder.parent):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
