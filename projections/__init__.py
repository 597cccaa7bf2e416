"""Read models: pure folding of escalation events into rows, their schemas and their queries."""
