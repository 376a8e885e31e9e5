"""Bay's services, each its own process (``python -m services.<name>``)."""

import libs.forksafe  # noqa: F401  (first: before anything imports grpc)
