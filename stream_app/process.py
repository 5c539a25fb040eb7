"""A scorer as a child process, as an operator runs it: start `momoguard serve`, wait until it is ready, stop it.

Used wherever the project starts scorers of its own: the demo, the benchmarks and the tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import MomoGuardError
from core.settings import PROJECT_ROOT


class ScorerNotReadyError(MomoGuardError):
    """The scorer exited, or did not answer /ready in time; the message ends with its log's tail."""


def get_json(url: str, timeout: float = 2.0) -> dict[str, Any]:
    """A JSON endpoint's body, also when it answers an error status (/health and /ready answer 503 with one)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return dict(json.loads(error.read()))


def ready_report(web: str) -> dict[str, Any] | None:
    """The worker's /ready report when it is ready; None while it is not (or does not answer)."""
    try:
        report = get_json(f"{web}/ready")
    except (OSError, ValueError):
        return None
    return report if report.get("ready") else None


class ScorerProcess:
    """One `momoguard serve` (or another scorer command) running as a child process, its output in `log`."""

    def __init__(
        self,
        web: str,
        log: Path,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        command: Sequence[str] | None = None,
        detached: bool = False,
    ) -> None:
        self.web = web
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                list(command or [sys.executable, "-m", "momoguard", "serve", *args]),
                env={**os.environ, **(env or {})},
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=detached,  # detached: outlives its starter (the demo leaves it running)
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 120.0) -> dict[str, Any]:
        """The /ready report once the worker is ready; ScorerNotReadyError if it exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ScorerNotReadyError(f"the scorer exited with {self.proc.returncode}: {self.log_tail()}")
            report = ready_report(self.web)
            if report is not None:
                return report
            time.sleep(0.5)
        raise ScorerNotReadyError(f"the scorer was not ready within {timeout:.0f} s: {self.log_tail()}")

    def health(self) -> dict[str, Any]:
        """The worker's /health report, whatever its status code."""
        return get_json(f"{self.web}/health")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the process and wait for its exit code (SIGKILL after `timeout` if it is still there)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return f"(no log at {self.log})"


def alive(pid: int) -> bool:
    """Whether a process of that pid runs (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_pid(pid: int, timeout: float = 60.0) -> bool:
    """SIGTERM a process we started earlier (by its recorded pid), SIGKILL after `timeout`; False if none ran."""
    if not alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True
