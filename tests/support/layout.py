"""The rooms of the house, from the ground up, and the rooms each may import (tests/test_layout.py checks it)."""

from __future__ import annotations

# README.md's Architecture section says the same.
ROOMS: dict[str, set[str]] = {
    "core": set(),
    "schemas": {"core"},
    "kafka_ops": {"core"},
    "paysim": {"core", "schemas"},
    "registry": {"core", "schemas"},
    "feedback": {"core", "schemas", "kafka_ops"},
    "training": {"core", "schemas", "paysim", "registry", "feedback"},
    "stream_app": {"core", "schemas", "kafka_ops", "registry"},
    "replay": {"core", "schemas", "kafka_ops", "paysim"},
    "benchmarks": {"core", "schemas", "kafka_ops", "paysim", "registry", "stream_app", "replay"},
    "momoguard": {
        "core",
        "schemas",
        "kafka_ops",
        "paysim",
        "registry",
        "feedback",
        "training",
        "stream_app",
        "replay",
        "benchmarks",
    },
}
