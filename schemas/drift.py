"""The drift reference of a model version and the population stability index (PSI), for training and scoring alike.

Training stores, with every version, each feature's and the score's histogram over its train window (bins cut at
the reference's own deciles); the scorer counts what it scores into the same bins and compares the two with PSI:
sum over bins of (actual - expected) * ln(actual / expected). Below 0.1 is usually read as stable, above 0.2 as a
shift worth a look. One counting function (`bin_counts`) serves both sides, so a bin means the same on each.

`hour_of_day` is left out of monitoring: a window shorter than a day sees only part of the day, so its PSI would
measure the clock rather than drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SCORE = "score"
CLOCK_FEATURES = ("hour_of_day",)
DEFAULT_BINS = 10
# Proportions below this count as this: an empty bin on one side would make the PSI infinite.
_FLOOR = 1e-4
_FORMAT = 1


@dataclass(frozen=True)
class DriftReference:
    """Per input (each feature, then the score): inner bin edges and the share of reference rows in each bin."""

    inputs: tuple[str, ...]
    edges: tuple[tuple[float, ...], ...]
    expected: tuple[tuple[float, ...], ...]
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "rows": self.rows,
            "inputs": list(self.inputs),
            "edges": [list(e) for e in self.edges],
            "expected": [list(p) for p in self.expected],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReference:
        """The reference as stored; ValueError when it is not one."""
        try:
            if int(data["format"]) != _FORMAT:
                raise ValueError(f"unknown drift reference format {data['format']!r}")
            inputs = tuple(str(i) for i in data["inputs"])
            edges = tuple(tuple(float(v) for v in e) for e in data["edges"])
            expected = tuple(tuple(float(v) for v in p) for p in data["expected"])
            rows = int(data["rows"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a drift reference: {error!r}") from None
        if not (len(inputs) == len(edges) == len(expected)) or any(
            len(p) != len(e) + 1 for e, p in zip(edges, expected, strict=True)
        ):
            raise ValueError("drift reference: inputs, edges and expected shares do not line up")
        return cls(inputs, edges, expected, rows)

    def monitored(self) -> list[int]:
        """Positions of the inputs the scorer watches (every feature but the clock, and the score)."""
        return [i for i, name in enumerate(self.inputs) if name not in CLOCK_FEATURES]


def reference_from(
    features: np.ndarray, names: Sequence[str], scores: np.ndarray, bins: int = DEFAULT_BINS
) -> DriftReference:
    """The reference of a model: each feature's and the score's histogram over these rows (its train window)."""
    columns = np.column_stack([np.asarray(features, dtype=np.float64), np.asarray(scores, dtype=np.float64)])
    if columns.shape[0] == 0:
        raise ValueError("a drift reference needs rows")
    quantiles = np.linspace(0, 1, bins + 1)[1:-1]
    edges = tuple(tuple(np.unique(np.quantile(columns[:, i], quantiles)).tolist()) for i in range(columns.shape[1]))
    grid = edge_grid(edges)
    counts = bin_counts(columns, grid)
    expected = tuple(tuple((counts[i, : len(e) + 1] / columns.shape[0]).tolist()) for i, e in enumerate(edges))
    return DriftReference((*names, SCORE), edges, expected, int(columns.shape[0]))


def edge_grid(edges: Sequence[Sequence[float]]) -> np.ndarray:
    """The inner edges of every input as one matrix, padded with +inf (no value lies at or above it)."""
    width = max((len(e) for e in edges), default=0)
    grid = np.full((len(edges), max(width, 1)), np.inf)
    for i, e in enumerate(edges):
        grid[i, : len(e)] = e
    return grid


def bin_counts(columns: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """How many rows fall in each bin of each input: rows x inputs in, inputs x (edges + 1) counts out.

    A value's bin is the number of edges at or below it (bin 0 below the first edge); NaN falls in bin 0.
    Vectorised over the whole batch: one comparison per value and edge, one bincount.
    """
    inputs, width = grid.shape
    if columns.shape[0] == 0:
        return np.zeros((inputs, width + 1), dtype=np.int64)
    which = (columns[:, :, None] >= grid[None, :, :]).sum(axis=2)
    flat = which + np.arange(inputs) * (width + 1)
    return np.bincount(flat.ravel(), minlength=inputs * (width + 1)).reshape(inputs, width + 1)


def psi(expected: Sequence[float], actual_counts: np.ndarray) -> float:
    """The population stability index of observed counts against the expected shares (same bins)."""
    total = float(np.sum(actual_counts))
    if total <= 0:
        return float("nan")
    e = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    a = np.maximum(np.asarray(actual_counts, dtype=np.float64)[: len(e)] / total, _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))
