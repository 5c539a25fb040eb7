"""Waiting for what a test expects, with a deadline, instead of asserting a snapshot of something still moving.

A scorer counts a verdict after it is delivered and Prometheus scrapes once a second, so a figure read right
after the last verdict arrived may be a batch short. Tests read it until it holds, and fail with the last
value seen when it does not hold in time. No timing is asserted: the deadline only bounds a broken run.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except OSError as error:  # not listening yet
            last_error = error
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what} (last error: {last_error})")


def wait_until(what: str, read: Callable[[], T], holds: Callable[[T], bool], timeout: float = 60.0) -> T:
    """Read until `holds(value)`, and return that value; fail with the last value read after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
        except OSError as error:  # not listening yet
            value = error  # type: ignore[assignment]
        else:
            if holds(value):
                return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {value!r} after {timeout:.0f} s")
        time.sleep(0.2)


def metric(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when there are none)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def scorer_metrics(web: str) -> str:
    """A running scorer's /metrics exposition."""
    with urllib.request.urlopen(f"{web}/metrics", timeout=5) as response:
        return str(response.read().decode())


def scorer_metric(web: str, name: str, **labels: str) -> float:
    """One figure of a running scorer's /metrics (see `metric`)."""
    return metric(scorer_metrics(web), name, **labels)
