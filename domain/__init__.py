"""The escalation domain: pure model, events and the application service. No I/O of its own."""
