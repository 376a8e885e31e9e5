"""Bay's tests."""

import libs.forksafe  # noqa: F401  (first: before anything imports grpc)
