"""The scheduler's domain: tasks, placement, launch backoff, health and reconciliation.

Pure functions and frozen dataclasses: no I/O, time comes in as ``now``, randomness as a seed.
The scheduler service feeds them the event log's state and the backend's capacity, and appends the
events they return.
"""
