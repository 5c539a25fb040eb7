"""The load test: publish transactions at a rate, read the verdicts back, report latency and the confusion."""
