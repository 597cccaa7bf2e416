"""The HTTP API (FastAPI): commands with optimistic concurrency, queries, health and metrics."""
