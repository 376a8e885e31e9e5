"""gRPC's fork handlers off, in every Bay process, before gRPC's core starts.

grpcio (1.85 here) registers ``pthread_atfork`` handlers that stop its threads before a ``fork()``
and start them again in *both* processes afterwards. Bay's processes fork only to ``exec`` (tasks,
fetchers, health-check commands, the services of ``bay up``), and ``subprocess`` forks, rather than
vforks, in some of those calls: the child then ran gRPC's restarted threads between the fork and the
exec, and sometimes died of it (SIGSEGV or SIGABRT before the exec, seen as a fetcher that "exited
-11"). Fork support is for processes that go on using gRPC after a fork without exec, which Bay
never does, so it is turned off: ``GRPC_ENABLE_FORK_SUPPORT=false`` is read by gRPC's core and its
Python layer when grpc is first imported, which is why this module is imported first, by the
``services``, ``tests`` and ``bench`` packages. It is set, not defaulted: no Bay process works with
it on."""

from __future__ import annotations

import os

os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
