"""Adapters and operations: settings, stores, Kafka, the relay, the API and the command line."""
