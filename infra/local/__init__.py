"""Local services that the demo, the tests and the benchmarks start: brokers, PostgreSQL, demo stories."""
