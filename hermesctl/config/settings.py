"""Host-side defaults that the CLI needs before anything heavy (docker, rich) is imported."""
DEFAULT_EXEC_TIMEOUT = 30.0  # seconds; every exec in a container has a deadline (--timeout)
