"""`momoguard log-sink` (the scored-transaction log's writer) and `momoguard label` (analysts' labels)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from core.errors import ConfigError
from core.settings import Settings
from schemas.label import LABEL_SOURCES

SOURCE_HELP = f"Who says so: {', '.join(LABEL_SOURCES)}."
_SHOWN_UNKNOWN = 10


def log_sink(
    log_dir: Annotated[
        str | None,
        typer.Option("--log-dir", help="Folder of the log (default: MOMOGUARD_LOG_DIR).", show_default=False),
    ] = None,
) -> None:
    """Write the scored transactions and the labels to the log as Parquet parts by day, until SIGTERM or Ctrl-C.

    Offsets are committed only after the parts holding their rows are durably closed, so a crash loses nothing;
    rows written twice meanwhile are removed by tx_id when the log is read.
    """
    from feedback.sink import run_sink

    settings = Settings.overridden(log_dir=log_dir)
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("feedback").setLevel(logging.INFO)
    stats = run_sink(settings, stopping)
    print(
        f"log sink stopped: {stats.scored_rows:,} scored rows, {stats.labels:,} labels, "
        f"{stats.rejected:,} rejected, {stats.parts:,} parts in {settings.feedback_dir}"
    )


def label(
    tx_id: Annotated[
        str | None, typer.Argument(help="The transaction's tx_id.", metavar="TX_ID", show_default=False)
    ] = None,
    fraud: Annotated[bool, typer.Option("--fraud", help="It was fraud.")] = False,
    genuine: Annotated[bool, typer.Option("--genuine", help="It was genuine.")] = False,
    source: Annotated[str | None, typer.Option("--source", help=SOURCE_HELP, show_default=False)] = None,
    note: Annotated[str | None, typer.Option("--note", help="Free text, for the next analyst.")] = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            "--csv", help="Label in bulk: a CSV with tx_id, is_fraud [, source, labelled_at, note].", show_default=False
        ),
    ] = None,  # fmt: skip
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as one JSON object.")] = False,
) -> None:
    """Label transactions fraud or genuine (to the labels topic, and from there into the log beside them).

    A label for a tx_id the log does not hold (yet) is kept, and named in the output.
    """
    from feedback import labels as labelling
    from feedback.log import logged_ids

    settings = Settings()
    if csv is not None:
        if tx_id is not None or fraud or genuine:
            raise ConfigError("give either TX_ID with --fraud or --genuine, or --csv FILE, not both")
        given = labelling.labels_from_csv(csv, source)
    else:
        if tx_id is None:
            raise ConfigError("give TX_ID with --fraud or --genuine, or --csv FILE")
        if fraud == genuine:
            raise ConfigError("say --fraud or --genuine (one of them)")
        if source is None:
            raise ConfigError(f"say who labels it: --source {'|'.join(LABEL_SOURCES)}")
        given = [labelling.one_label(tx_id, fraud, source, note)]
    labelling.publish(settings, given)
    ids = list(dict.fromkeys(x.tx_id for x in given))
    unknown = sorted(set(ids) - logged_ids(settings.feedback_dir, ids))
    frauds = sum(x.is_fraud for x in given)
    if as_json:
        print(json.dumps({"labelled": len(given), "fraud": frauds, "genuine": len(given) - frauds,
                          "topic": settings.topic_labels, "unknown_tx_ids": unknown}))  # fmt: skip
        return
    kinds = f"{frauds:,} fraud, {len(given) - frauds:,} genuine"
    print(f"labelled {len(given):,} transaction(s) ({kinds}) on {settings.topic_labels}")
    if unknown:
        shown = ", ".join(unknown[:_SHOWN_UNKNOWN]) + (", ..." if len(unknown) > _SHOWN_UNKNOWN else "")
        print(f"{len(unknown):,} tx_id(s) not in the scored log (yet), kept all the same: {shown}")
