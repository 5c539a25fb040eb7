"""The replayer's own conduct, without Kafka."""

from __future__ import annotations

import gc

import pytest

from replay.replayer import collector_paused


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_during_a_replay_and_as_it_was_after(enabled: bool) -> None:
    # A full pass of the collector over the replayer's heap would be measured as the scorer's latency.
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), collector_paused():
            raise RuntimeError("the replay failed")
        assert gc.isenabled() is enabled, "restored when the replay raises too"
    finally:
        (gc.enable if was else gc.disable)()
