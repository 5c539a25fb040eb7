"""`momoguard demo`: the main job end to end - broker, model, scorer, a replay with a live summary.

What it starts (the broker, the scorer) keeps running afterwards so the dashboard can be looked at;
`momoguard demo --down` (make demo-down) stops exactly those processes, by the pids recorded here.
Ctrl-C during the demo stops them too.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from core.errors import MomoGuardError
from core.settings import PROJECT_ROOT, Settings
from kafka_ops import local_broker, topics
from stream_app.process import ScorerNotReadyError, ScorerProcess, alive, ready_report, stop_pid

console = Console()
WARM_UP = 5_000


def _demo_dir(settings: Settings) -> Path:
    path = settings.run_dir / "demo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _scorer_pid_file(settings: Settings) -> Path:
    return _demo_dir(settings) / "scorer.pid"


def _web(settings: Settings) -> str:
    return f"http://{settings.web_host}:{settings.web_port}"


def ensure_champion(settings: Settings, train_args: list[str]) -> str:
    """The champion's version, training one first when the registry has none."""
    from registry import champion_version

    version = champion_version(settings)
    if version is not None:
        console.print(f"[green]champion[/]: {settings.model_name} version {version} (already registered)")
        return version
    console.print(f"[bold]training[/] a first model ({' '.join(train_args) or 'defaults'}) ...")
    done = subprocess.run([sys.executable, "-m", "momoguard", "train", *train_args], cwd=PROJECT_ROOT, check=False)
    version = champion_version(settings)
    if done.returncode != 0 or version is None:
        raise MomoGuardError("training did not produce a champion; see the output above")
    return version


def start_scorer(settings: Settings, wait_s: float = 180.0) -> int:
    """Start `momoguard serve` in the background (or find the demo's one running); wait until it is ready."""
    pid_file = _scorer_pid_file(settings)
    if pid_file.exists() and alive(int(pid_file.read_text())) and ready_report(_web(settings)):
        pid = int(pid_file.read_text())
        console.print(f"[green]scorer[/]: already running (pid {pid})")
        return pid
    log = _demo_dir(settings) / "scorer.log"
    process = ScorerProcess(_web(settings), log, detached=True)
    pid_file.write_text(str(process.pid))
    with console.status("starting the scorer (loading the champion, joining the consumer group) ..."):
        try:
            process.wait_ready(wait_s)
        except ScorerNotReadyError as error:
            raise ScorerNotReadyError(f"{str(error).split(':')[0]}: see {log}") from None
    console.print(f"[green]scorer[/]: ready (pid {process.pid}), web on {settings.web_port}")
    return process.pid


def stop_scorer(settings: Settings) -> int | None:
    pid_file = _scorer_pid_file(settings)
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    pid_file.unlink()
    return pid if stop_pid(pid) else None


def down(settings: Settings) -> None:
    """Stop what the demo started: the scorer, then the local broker."""
    pid = stop_scorer(settings)
    console.print(f"scorer (pid {pid}) stopped" if pid else "no demo scorer running")
    local = local_broker.LocalBroker.from_bootstrap(settings.kafka_bootstrap, settings.run_dir)
    stopped = local_broker.stop(local)
    console.print(f"Kafka broker (pid {stopped}) stopped" if stopped else "no Kafka broker of ours running")


def run(settings: Settings, rows: int, rate: float, train_args: list[str]) -> None:
    """The whole demo. Ctrl-C stops everything it started."""
    from replay.load_test import load_source, print_summary, run_replay, write_outputs
    from replay.replayer import Pace

    started = time.monotonic()
    local = local_broker.LocalBroker.from_bootstrap(settings.kafka_bootstrap, settings.run_dir)
    try:
        with console.status("starting Kafka (first run: resolving the broker from Maven Central) ..."):
            pid = local_broker.start(local)
        console.print(f"[green]kafka[/]: {local_broker.kafka_version(local)} on {local.bootstrap} (pid {pid})")
        topics.create_topics(settings)
        version = ensure_champion(settings, train_args)
        start_scorer(settings)
        frame = load_source(None, rows + WARM_UP, seed=42)
        # A just-started broker and worker spend their first seconds on JIT compilation, group coordination and
        # first fetches; a short replay first keeps that out of the figures (and says so).
        console.print(f"warming up with {WARM_UP:,} transactions (not counted) ...")
        run_replay(settings, frame.head(WARM_UP), Pace(rate=rate), wait=60)
        frame = frame.slice(WARM_UP)
        console.print(f"[bold]replaying[/] {rows:,} generated PaySim transactions at {rate:,.0f} tx/s ...")
        result = run_replay(settings, frame, Pace(rate=rate), wait=60)
        report = PROJECT_ROOT / "reports" / "demo-replay.json"
        write_outputs(result, report)
        print_summary(result.report, report)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: stopping what the demo started")
        down(settings)
        raise
    minutes = (time.monotonic() - started) / 60
    console.print(f"\n[bold green]demo done[/] in {minutes:.1f} min, champion version {version}.")
    print_next_steps(console, settings)


def print_next_steps(out: Console, settings: Settings) -> None:
    """What to look at and run after the demo, one line each: commands are copied from here, so a long one
    is left for the terminal to fold on screen rather than broken by a newline."""
    web = f"http://{settings.web_host}:{settings.web_port}"
    lines = [
        f"  live dashboard:  {web}/dashboard",
        f"  metrics:         {web}/metrics",
        f"  MLflow UI:       .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri} --port 5000"
        "  (then http://127.0.0.1:5000)",
        "  more traffic:    make replay ARGS='--rate 2000 --rows 100000'",
        "  stop everything: make demo-down",
    ]
    for line in lines:
        out.print(line, soft_wrap=True, highlight=False, markup=False)
