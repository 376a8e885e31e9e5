"""Bay's benchmarks: figures, not tests (``python -m bench [NAME...]``).

Each benchmark starts its own nats-server (free port, temporary directory) and its own services,
prints one block (parameters, figures, the target met or missed) and never fails for being slow.
The results also go to ``.bay/bench-results.json`` (``--out`` to choose).

- ``replay``: raw read and registry fold rate over a 1,000,000-event history.
- ``restart``: registry restart from a snapshot with that history (and without, for comparison).
- ``scale``: ScaleGroup round trips over gRPC, durable append included, 1 and 8 clients.
- ``gateway``: GET /v1/groups with 1,000 groups under 32 concurrent HTTP clients.
- ``dns-switch``: from a registry SetRollout (a blue-green switch, a canary weight change) to the
  changed Bay DNS answer, p50/p99.
"""

import libs.forksafe  # noqa: F401  (first: before anything imports grpc)
