"""Entrypoints: the gRPC API (requests become calls on the service layer)."""
