"""Drift of what the champion scores: each feature's and the score's PSI over a rolling window, against the
champion's training reference (schemas/drift.py).

Per batch the scorer only counts: one vectorised bin count of the feature matrix it already built, added to the
current slice of a ring of slices covering the window. A timer turns the window's counts into PSI gauges every few
seconds. Memory is fixed (slices x inputs x bins); a new champion starts a new window against its own reference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from schemas.drift import DriftReference, bin_counts, edge_grid, psi
from stream_app.metrics import ScorerMetrics

SLICES = 30


class DriftMonitor:
    """The rolling window of bin counts of one champion, and the PSI gauges made from it."""

    def __init__(
        self,
        metrics: ScorerMetrics,
        window_s: float,
        min_transactions: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.window_s = window_s
        self.min_transactions = min_transactions
        self.clock = clock
        self.slice_s = window_s / SLICES
        self.reference: DriftReference | None = None
        self._features: np.ndarray = np.empty(0, dtype=np.int64)  # the matrix columns watched, in order
        self._names: list[str] = []
        self._expected: list[tuple[float, ...]] = []
        self._grid = np.empty((0, 1))
        self._counts = np.zeros((SLICES, 0, 1), dtype=np.int64)
        self._slice_of = np.full(SLICES, -1, dtype=np.int64)  # which absolute slice each ring position holds
        self.latest: dict[str, float] = {}  # the last refresh's PSI per input (the built-in dashboard shows it)
        self.window_transactions = 0

    def use(self, reference: DriftReference | None) -> None:
        """Watch against this reference from now on (None: a champion without one, nothing is watched)."""
        self.reference = reference
        self.metrics.drift_psi.clear()
        self.metrics.drift_window.set(0)
        self.latest, self.window_transactions = {}, 0
        if reference is None:
            self._names = []
            return
        watched = reference.monitored()
        score = len(reference.inputs) - 1
        self._features = np.asarray([i for i in watched if i != score], dtype=np.int64)
        self._names = [reference.inputs[i] for i in watched]
        self._expected = [reference.expected[i] for i in watched]
        self._grid = edge_grid([reference.edges[i] for i in watched])
        self._counts = np.zeros((SLICES, len(watched), self._grid.shape[1] + 1), dtype=np.int64)
        self._slice_of[:] = -1

    def observe(self, features: np.ndarray, scores: np.ndarray) -> None:
        """Count a scored batch into the current slice."""
        if self.reference is None or not len(scores):
            return
        columns = np.column_stack([features[:, self._features], scores])
        at = self._position(int(self.clock() // self.slice_s))
        self._counts[at] += bin_counts(columns, self._grid)

    def refresh(self) -> dict[str, float]:
        """PSI of every watched input over the window, exported as gauges (none below `min_transactions`)."""
        if self.reference is None:
            return {}
        now = int(self.clock() // self.slice_s)
        live = (self._slice_of > now - SLICES) & (self._slice_of >= 0)
        window = self._counts[live].sum(axis=0)
        transactions = int(window[0].sum()) if len(window) else 0
        self.metrics.drift_window.set(transactions)
        self.window_transactions = transactions
        if transactions < self.min_transactions:
            self.metrics.drift_psi.clear()
            self.latest = {}
            return {}
        values = {
            name: psi(expected, window[i])
            for i, (name, expected) in enumerate(zip(self._names, self._expected, strict=True))
        }
        for name, value in values.items():
            if math.isfinite(value):
                self.metrics.drift_psi.labels(name).set(value)
        self.latest = values
        return values

    def view(self) -> dict[str, object]:
        """What the built-in dashboard shows: the window's size and its inputs' PSI, highest first."""
        ranked = sorted(((n, v) for n, v in self.latest.items() if math.isfinite(v)), key=lambda item: -item[1])
        return {
            "watched": self.reference is not None,
            "window_s": self.window_s,
            "window_transactions": self.window_transactions,
            "min_transactions": self.min_transactions,
            "psi": dict(ranked),
        }

    def _position(self, absolute: int) -> int:
        at = absolute % SLICES
        if self._slice_of[at] != absolute:  # a slice older than the window: start it afresh
            self._counts[at] = 0
            self._slice_of[at] = absolute
        return at
