"""The event log: an append-only JetStream stream that every service folds into its state.

- :class:`EventLog` is the port; :class:`MemoryEventLog` its in-memory fake and
  :class:`JetStreamEventLog` the real adapter. One contract suite (tests/contract) runs on both.
- :class:`Projection` turns a log, a pure ``apply`` and an optional :class:`SnapshotStore` into live
  state with read-your-writes (``wait_for(seq)``).
"""

from libs.eventlog.port import AppendResult, EventLog, Record, StreamSettings
from libs.eventlog.projection import Projection
from libs.eventlog.snapshots import FileSnapshotStore, MemorySnapshotStore, Snapshot, SnapshotStore

__all__ = [
    "AppendResult",
    "EventLog",
    "FileSnapshotStore",
    "MemorySnapshotStore",
    "Projection",
    "Record",
    "Snapshot",
    "SnapshotStore",
    "StreamSettings",
]
