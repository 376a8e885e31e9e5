"""Clusters and builds: registered once, then referred to by groups."""

from __future__ import annotations

import re
from dataclasses import dataclass

from libs.addresses import parse_host_port
from libs.errors import Conflict, FieldViolation, ValidationFailed
from libs.events.model import Build, BuildRegistered, Cluster, ClusterRegistered
from libs.spec import DNS_LABEL_RE

__all__ = [
    "Build",
    "BuildRegistered",
    "Cluster",
    "ClusterRegistered",
    "RegisterBuild",
    "RegisterCluster",
    "decide_build",
    "decide_cluster",
]

BACKENDS = ("local", "mesos")
BUILD_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


@dataclass(frozen=True)
class RegisterCluster:
    cluster: Cluster


@dataclass(frozen=True)
class RegisterBuild:
    build: Build


def decide_cluster(existing: Cluster | None, cmd: RegisterCluster) -> list[ClusterRegistered]:
    c = cmd.cluster
    bad = []
    if not re.match(DNS_LABEL_RE, c.name):
        bad.append(FieldViolation("cluster.name", "must be a DNS label (a-z, 0-9, -; at most 63)"))
    if c.backend not in BACKENDS:
        bad.append(FieldViolation("cluster.backend", f"must be one of {', '.join(BACKENDS)}"))
    if c.backend == "mesos" and not c.address:
        bad.append(FieldViolation("cluster.address", "a mesos cluster needs its master's URL"))
    if c.scheduler_address:
        try:
            parse_host_port(c.scheduler_address, field="cluster.scheduler_address")
        except ValidationFailed as exc:
            bad.extend(exc.violations)
    if bad:
        raise ValidationFailed(bad)
    if existing is None:
        return [ClusterRegistered(c)]
    if (existing.backend, existing.address, existing.labels) != (c.backend, c.address, c.labels):
        raise Conflict(f"cluster {c.name!r} is already registered with another backend or address")
    # Where the scheduler listens is not what the cluster is: a scheduler moved to another port
    # (``bay up`` with other settings) is a change to record, not a conflict. Empty says nothing
    # (proto3 cannot tell it from unset), so an older client's repeat keeps the registered address.
    if c.scheduler_address and c.scheduler_address != existing.scheduler_address:
        return [ClusterRegistered(c)]
    return []  # registering the same cluster again changes nothing


def decide_build(existing: Build | None, cmd: RegisterBuild) -> list[BuildRegistered]:
    b = cmd.build
    bad = []
    if not re.match(BUILD_ID_RE, b.id):
        bad.append(FieldViolation("build.id", "letters, digits, '.', '_' and '-'; at most 128"))
    if not b.image:
        bad.append(FieldViolation("build.image", "is required"))
    if bad:
        raise ValidationFailed(bad)
    if existing is not None:
        if (existing.image, existing.commit) == (b.image, b.commit):
            return []
        raise Conflict(f"build {b.id!r} is already registered with another image; builds are immutable")
    return [BuildRegistered(b)]
