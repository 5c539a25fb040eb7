"""`momoguard serve`: run N scorer workers in one consumer group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

import typer


def serve(
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes in the consumer group."),
    web_port: int | None = typer.Option(None, min=1, max=65535, help="Web port of the first worker."),
    worker_index: int = typer.Option(0, min=0, hidden=True, help="Run as worker number N (internal)."),
) -> None:
    """Score every transaction with the registry's champion and write verdicts (Ctrl-C or SIGTERM stops)."""
    from core.settings import Settings

    if web_port is not None:
        os.environ["MOMOGUARD_WEB_PORT"] = str(web_port)
    settings = Settings()
    from stream_app.worker import check_web_port, run_worker

    if workers == 1:
        run_worker(settings, worker_index)
        return
    for index in range(workers):  # each worker checks its own too; here one taken port stops them all at once
        check_web_port(settings.web_host, settings.web_port + index)
    if settings.tracking_uri.startswith("sqlite:"):
        # The workers share this SQLite store: create (migrate) it once here, or their first reads race to
        # migrate a new one ("table _alembic_tmp_tags already exists").
        import registry

        registry.check_reachable(settings)
    _supervise(workers)


def _supervise(workers: int) -> None:
    """Start the workers as child processes; pass SIGTERM/SIGINT on; exit with the worst exit code."""
    children = [
        subprocess.Popen([sys.executable, "-m", "momoguard", "serve", "--worker-index", str(i)]) for i in range(workers)
    ]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    if any(codes):
        raise typer.Exit(max(abs(c) for c in codes))
