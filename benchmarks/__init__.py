"""Benchmarks: the scorer against a plain Kafka loop, latency, the model, the generator (`make bench`)."""
