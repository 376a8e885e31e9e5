"""The Mesos cluster backend: a framework on the v1 scheduler HTTP API through pymesos (see backend.py)."""

from .backend import MesosBackend
from .config import MesosBackendConfig

__all__ = ["MesosBackend", "MesosBackendConfig"]
