"""The local cluster backend: tasks as detached processes on this machine (see backend.py)."""

from .backend import LocalBackend
from .config import LocalBackendConfig

__all__ = ["LocalBackend", "LocalBackendConfig"]
