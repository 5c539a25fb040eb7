"""The cost of shadow scoring: the Faust scorer draining the same backlog without and with a challenger.

Both drains run against a registry of the bench's own (a temporary SQLite store), so setting the challenger
never touches the operator's registry: version 1 is the champion, version 2 the same booster as challenger,
which scores every batch too and writes its verdicts to the shadow topic (a real challenger of the same size
costs the same). The figure is the ratio of the two drain rates.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

import registry
from core.settings import Settings
from schemas.features import build_features

# drain(settings, frame, name): transactions per second of `momoguard serve` answering the whole backlog
Drain = Callable[[Settings, pl.DataFrame, str], float]


@dataclass(frozen=True)
class ShadowCost:
    """Drain rates of one Faust worker without and with a challenger shadowing the champion."""

    champion_only_tps: float
    with_challenger_tps: float

    @property
    def ratio(self) -> float | None:
        """With a challenger / without: 1.0 means shadowing is free, 0.5 that it halves the throughput."""
        return self.with_challenger_tps / self.champion_only_tps if self.champion_only_tps else None


def shadow_cost(settings: Settings, frame: pl.DataFrame, drain: Drain) -> ShadowCost:
    """Drain `frame` twice, the second time with a challenger set (see the module's docstring)."""
    champion = registry.load_champion(settings)
    with tempfile.TemporaryDirectory(prefix="momoguard-bench-shadow-") as tmp:
        folder = Path(tmp)
        own = settings.model_copy(
            update={"mlflow_tracking_uri": f"sqlite:///{folder / 'mlflow.db'}", "run_dir": folder}
        )
        card = folder / "card.md"
        card.write_text(f"bench copy of {champion.name} version {champion.version}\n")
        versions = [
            registry.register(
                own,
                booster=champion.booster,
                feature_set=champion.feature_set,
                threshold=champion.threshold,
                params={"copy_of": champion.version},
                metrics={},
                example=build_features(frame.head(5), champion.feature_set),
                artifacts=[card],
                tags={"purpose": "bench"},
                drift_reference=champion.reference,
            ).version
            for _ in range(2)
        ]
        registry.make_champion(own, versions[0], "bench: the champion")
        alone = drain(own, frame, "shadow-off")
        registry.make_challenger(own, versions[1], "bench: shadowing costs")
        shadowed = drain(own, frame, "shadow-on")
    return ShadowCost(alone, shadowed)
