"""The Kafka side: the CloudEvents envelope, topics, client settings, the relay and its checkpoint."""
