"""Faust's Monitor without its per-message bookkeeping.

Faust's built-in Monitor sensor updates Python counters and timers for every message and every stream event
(`on_message_in`, `on_stream_event_in/out`, `on_message_out`, `track_tp_end_offset`) to feed Faust's own
statistics page. The scorer measures itself per micro-batch in Prometheus (stream_app/metrics.py) and never
reads those counters, so here they are switched off; rebalance, commit, send and web hooks stay as they are.
On a bare agent this takes a bare Faust worker from about 5,400 to 6,100 events/s (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Any

from faust.sensors.monitor import Monitor


class MonitorWithoutMessageStats(Monitor):
    """Monitor whose per-message and per-event hooks do nothing."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        return None
