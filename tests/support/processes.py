"""The processes a test session started: every one carries the session's mark, so none can outlive it unseen.

The mark is an environment variable set when the session starts; children inherit it, and their children
(a `momoguard train` and the Prefect server it starts, a scorer, a spare broker) inherit it from them.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

SESSION_VARIABLE = "MOMOGUARD_TEST_SESSION_MARK"


def mark_session() -> str:
    """Give this process (and so every process it starts from now on) the session's mark."""
    return os.environ.setdefault(SESSION_VARIABLE, uuid.uuid4().hex)


@dataclass(frozen=True)
class Leftover:
    pid: int
    command: str


def marked_processes(value: str | None = None) -> list[Leftover]:
    """Live processes other than this one that carry this session's mark, or the mark `value` (Linux /proc)."""
    mark = f"{SESSION_VARIABLE}={value or os.environ.get(SESSION_VARIABLE, '')}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):  # gone meanwhile, or another user's
            continue
        if state != "Z":  # a zombie has exited; its parent only has not reaped it yet
            found.append(Leftover(int(entry.name), command))
    return found


def leftovers(grace_s: float = 15.0) -> list[Leftover]:
    """Marked processes still alive after `grace_s` (a process told to stop may take a moment to exit)."""
    deadline = time.monotonic() + grace_s
    while True:
        alive = marked_processes()
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def stop(processes: list[Leftover], timeout_s: float = 10.0) -> None:
    """SIGTERM each, then SIGKILL what is still there after `timeout_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in processes:
            try:
                os.kill(process.pid, sig)
            except ProcessLookupError:
                pass
        pids = {p.pid for p in processes}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pids & {p.pid for p in marked_processes()}:
            time.sleep(0.2)
