"""Kafka operations: the local broker, topics, offsets, and the client config every Kafka client is built from."""
