"""Small programs that tests and benchmarks run as tasks."""
