"""The commands that talk to the gateway (groups, events) or edit local files (tokens)."""
