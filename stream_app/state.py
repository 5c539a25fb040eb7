"""What the agent, the timers and the web views of one worker share: the scorer, the deliverer, health."""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from core.settings import Settings
from registry import LoadedModel, load_version
from registry.errors import ModelUnusableError
from schemas.features import uses_account_state
from stream_app import bulk
from stream_app.accounts import AccountTables
from stream_app.closed_loop import ClosedLoop
from stream_app.decisions import DecisionPolicy
from stream_app.delivery import Deliverer
from stream_app.list_topic import ListReader
from stream_app.metrics import ScorerMetrics
from stream_app.pipeline import BatchProcessor
from stream_app.scoring import Scorer

log = logging.getLogger(__name__)

EXIT_AGENT_DIED = 3


@dataclass
class ScorerState:
    """What the agent, the reload timer and the web views share inside one worker."""

    settings: Settings
    processor: BatchProcessor
    metrics: ScorerMetrics
    deliverer: Deliverer
    reload_failures: int = 0
    refused: dict[str, tuple[str | None, ...]] = field(default_factory=dict)  # unusable champions' tags
    lag_partitions: set[TP] = field(default_factory=set)  # partitions with a lag gauge
    lag: int = 0  # messages behind, over the assigned partitions
    last_batch_at: float = field(default_factory=time.monotonic)
    crashed: str | None = None  # why the agent died, once it has
    exit_code: int = 0
    missing_topics: set[str] = field(default_factory=set)
    stop_deadline: float | None = None  # monotonic time by which a stopping worker must have exited
    route: bulk.BulkRoute | None = None  # the bulk path of `transactions` (stream_app/bulk.py)
    lists: ListReader | None = None  # follows the lists topic into the scorer's ListTable (stream_app/list_topic.py)
    closed_loop: ClosedLoop | None = None  # shadow challenger, scored log, drift (stream_app/closed_loop.py)
    accounts: AccountTables | None = None  # the account tables, when the worker keeps them (stream_app/accounts.py)

    @property
    def version(self) -> str:
        return self.processor.scorer.version

    def swap_model(self, model: LoadedModel) -> None:
        """Swap the model. Called on the event loop, where no batch is ever half-scored (`process` is sync)."""
        scorer = scorer_for(model, self.settings, self.processor.scorer.policy)  # same lists, texts, deadline
        self.processor.swap(scorer)
        self.metrics.set_model(model.name, model.version, model.threshold, time.time(), scorer.review_threshold)
        if self.closed_loop is not None:
            self.closed_loop.champion_changed(model)

    def health(self, now: float | None = None) -> dict[str, Any]:
        """Alive, stalled (work waits and nothing moved for `stall_timeout_s`) or crashed, with the evidence."""
        now = time.monotonic() if now is None else now
        progress = max(self.last_batch_at, self.deliverer.last_progress)
        idle_for = now - progress
        waiting = self.lag > 0 or self.deliverer.pending > 0
        stalled = waiting and idle_for > self.settings.stall_timeout_s
        self.metrics.stalled.set(1 if stalled else 0)
        status = "crashed" if self.crashed else "stalled" if stalled else "alive"
        report: dict[str, Any] = {
            "status": status,
            "lag": self.lag,
            "unacknowledged": self.deliverer.pending,
            "seconds_since_progress": round(idle_for, 1),
        }
        if self.crashed:
            report["error"] = self.crashed
        elif stalled:
            report["error"] = self.deliverer.last_error or "no delivery error reported"
        if self.missing_topics:
            report["missing_topics"] = sorted(self.missing_topics)
        return report

    def progressed(self) -> None:
        self.last_batch_at = time.monotonic()
        self.metrics.last_progress.set(time.time())

    def die(self, reason: str) -> None:
        """The agent cannot go on: say so, fail /health, and stop the process with a non-zero exit."""
        if self.crashed is None:
            log.critical("the scoring agent died (%s): stopping the worker (exit %d)", reason, EXIT_AGENT_DIED)
            self.crashed = reason
            self.exit_code = EXIT_AGENT_DIED
            os.kill(os.getpid(), signal.SIGTERM)  # the same bounded stop as an operator's SIGTERM

    def drain_budget(self) -> float:
        """Seconds a stopping agent may wait for its verdicts: what is left before the hard deadline, less a margin."""
        if self.stop_deadline is None:
            return self.settings.shutdown_timeout_s
        return max(0.0, self.stop_deadline - time.monotonic() - 2.0)


def check_servable(model: LoadedModel, account_tables: bool) -> LoadedModel:
    """`model` if this scorer can serve it; ModelUnusableError saying why not.

    A model trained on account_state features needs each transaction's account state, which only the account
    tables give (`MOMOGUARD_FEATURE_SET=account_state` or `MOMOGUARD_ACCOUNT_TABLES=true`); scoring such a model
    without them would be silently wrong.
    """
    if uses_account_state(model.feature_set) and not account_tables:
        raise ModelUnusableError(
            f"{model.name} version {model.version} uses the account_state feature set, which needs the account "
            "tables this scorer does not keep; start it with MOMOGUARD_FEATURE_SET=account_state, or serve a "
            "version trained on pre_settlement or post_settlement features"
        )
    return model


def load_servable(settings: Settings, version: str) -> LoadedModel:
    """A version of the registry this scorer can serve (`check_servable`), or ModelUnusableError."""
    return check_servable(load_version(settings, version), settings.keeps_account_tables)


def scorer_for(model: LoadedModel, settings: Settings, policy: DecisionPolicy | None = None) -> Scorer:
    """The worker's scorer for `model`: the settings' reasons, and the desk's levers (`policy`, built once)."""
    policy = policy or DecisionPolicy.from_settings(settings)
    if policy.review_tier and model.review_threshold is None:
        log.warning(
            "MOMOGUARD_REVIEW_TIER is on but %s version %s has no review threshold: its verdicts are block/allow",
            model.name,
            model.version,
        )
    return Scorer(model, settings.reasons_per_verdict, settings.explain_min_score, policy)
