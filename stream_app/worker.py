"""Start one scorer worker: load the champion (bounded retry), make sure the topics exist, run Faust."""

from __future__ import annotations

import errno
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from functools import partial
from typing import Any

import faust
import mode.loop

from core.errors import ConfigError, MomoGuardError
from core.settings import Settings
from kafka_ops import topics
from registry import LoadedModel, challenger_version, load_champion
from registry.errors import ModelNotFoundError, ModelUnusableError, RegistryError, RegistryUnreachableError
from stream_app.reasons import load_catalog
from stream_app.state import ScorerState, check_servable, load_servable

log = logging.getLogger(__name__)


class NoChampionError(MomoGuardError):
    """There is no model to score with."""


def load_champion_with_retry(settings: Settings) -> LoadedModel:
    """The champion, or the last good one when it is unusable (`registry.fallback_versions`).

    An unreachable registry is retried for `registry_retry_s`; a missing champion, or no usable version, is not.
    """
    deadline = time.monotonic() + settings.registry_retry_s
    delay = 1.0
    while True:
        try:
            return load_champion(
                settings, fall_back=True, check=partial(check_servable, account_tables=settings.keeps_account_tables)
            )
        except ModelNotFoundError:
            raise NoChampionError(
                f"no champion model {settings.model_name!r} in {settings.tracking_uri}: run `make train` first"
            ) from None
        except ModelUnusableError as error:
            raise NoChampionError(f"no usable model: {error}") from None
        except RegistryUnreachableError as error:
            if time.monotonic() + delay > deadline:
                raise NoChampionError(f"cannot load the champion: {error}") from None
            log.warning("registry not ready (%s); retrying in %.0f s", error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def load_challenger_quietly(settings: Settings) -> LoadedModel | None:
    """The challenger to shadow with from the first batch, if one is set and usable; else None (the reload timer
    tries again). Never stops a worker from starting: the challenger decides nothing."""
    try:
        version = challenger_version(settings)
        return None if version is None else load_servable(settings, version)
    except RegistryError as error:
        log.warning("not shadowing at start: %s", error)
        return None


def check_web_port(host: str, port: int) -> None:
    """A one-line ConfigError when the web port is taken, found before the champion is loaded.

    The probe binds as the web server will (SO_REUSEADDR, as aiohttp does), so a port left in TIME_WAIT by a
    stopped scorer is free here too; the port is released at once for the server to take.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            why = "already in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
            raise ConfigError(
                f"web port {host}:{port} is {why}: stop what holds it or choose another (--web-port or "
                "MOMOGUARD_WEB_PORT)"
            ) from None


# A reload poll must fail in seconds, not after MLflow's default minutes of retries: the next poll retries.
REGISTRY_CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


def run_worker(settings: Settings, worker_index: int = 0, loglevel: str = "WARNING") -> None:
    """Run one worker until SIGTERM/SIGINT; exits the process (0 on a clean stop)."""
    from stream_app.app import build_app, state_dir

    check_web_port(settings.web_host, settings.web_port + worker_index)
    load_catalog(settings.reason_language, settings.reason_catalog_dir)  # a missing translation: one line, now
    for name, value in REGISTRY_CLIENT_ENV.items():
        os.environ.setdefault(name, value)
    # uvloop: Faust's per-event path is event-loop bound (tasks, futures, call_soon); measured ~1.5x here.
    mode.loop.use("uvloop")
    model = load_champion_with_retry(settings)
    shadowing = load_challenger_quietly(settings)
    topics.create_topics(settings)
    state_dir(settings, worker_index).parent.mkdir(parents=True, exist_ok=True)
    for noisy in ("faust", "mode", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app, state = build_app(settings, model, worker_index, shadowing)
    # Every list entry in force applies from the first transaction scored: read the lists before scoring.
    assert state.lists is not None
    state.lists.start().wait_loaded(settings.lists_load_timeout_s)
    # Everything loaded so far (MLflow, polars, LightGBM, Faust, the model: ~385,000 objects) lives as long as the
    # process: keep it out of the collector's full passes, each of which stalled the event loop for 200-280 ms
    # here (the worst of the latency tail). Measured and explained in docs/BENCHMARKS.md.
    gc.collect()
    gc.freeze()
    log.info(
        "worker %d scoring %s with %s v%s (threshold %.4f), web on %s:%d",
        worker_index,
        settings.topic_transactions,
        model.name,
        model.version,
        model.threshold,
        settings.web_host,
        settings.web_port + worker_index,
    )
    worker = BoundedStopWorker(state, app, loglevel=loglevel, quiet=True, override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:
        code = stopped.code if isinstance(stopped.code, int) else 1
    finally:
        state.lists.stop()
    sys.exit(state.exit_code or code)


class BoundedStopWorker(faust.Worker):
    """A Faust worker whose stop (SIGTERM, SIGINT, a dead agent) ends the process within `shutdown_timeout_s`.

    Faust's own stop waits for the broker: with traffic in flight until it returns, idle about a minute. Past
    the deadline the process exits at once (code 1). That is safe: offsets are committed only for verdicts the
    broker acknowledged, so whatever was still in flight is scored again after a restart.
    """

    def __init__(self, state: ScorerState, *services: Any, **kwargs: Any) -> None:
        super().__init__(*services, **kwargs)
        self._state = state

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        state = self._state
        if state.stop_deadline is None:
            timeout = state.settings.shutdown_timeout_s
            state.stop_deadline = time.monotonic() + timeout
            threading.Thread(target=_exit_after, args=(state, timeout), name="stop-deadline", daemon=True).start()
        super()._schedule_shutdown(signum)


def _exit_after(state: ScorerState, timeout: float) -> None:
    time.sleep(timeout)
    log.error(
        "the worker did not stop within %.0f s (%d records unacknowledged; last error: %s): exiting now; "
        "nothing unacknowledged was committed, so it is scored again after a restart",
        timeout,
        state.deliverer.pending,
        state.deliverer.last_error or "none",
    )
    logging.shutdown()
    os._exit(state.exit_code or 1)
