"""Adapters: the event log appender, wire forms, snapshots, health checkers, usage publishing."""
