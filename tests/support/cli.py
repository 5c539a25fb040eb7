"""`python -m momoguard ...` as a user runs it: a process of its own, for the tests of every room."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from core.settings import PROJECT_ROOT


def run_momoguard(
    *args: str,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    cwd: Path = PROJECT_ROOT,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run the command to its end; `env` goes on top of this process's environment (or alone, `inherit_env=False`)."""
    return subprocess.run(
        [sys.executable, "-m", "momoguard", *args],
        env={**(os.environ if inherit_env else {}), **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
