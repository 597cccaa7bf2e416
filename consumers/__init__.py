"""Long-running Kafka consumers that feed the projections and store their offsets with them."""
