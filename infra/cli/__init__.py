"""The command line (`escalations ...`) and the long-running `serve` process."""
