"""Clusters and builds: registered once, then referred to by groups."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from libs.addresses import parse_host_port
from libs.errors import Conflict, FieldViolation, ValidationFailed
from libs.events.model import Artifact, Build, BuildRegistered, Cluster, ClusterRegistered
from libs.spec import DNS_LABEL_RE

__all__ = [
    "Artifact",
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
SHA256_RE = r"^[0-9a-f]{64}$"
# a repository (registry host, port, path; no tag is needed, one is allowed) pinned by its digest
IMAGE_DIGEST_RE = r"^[a-z0-9][a-z0-9._/:-]{0,255}@sha256:[0-9a-f]{64}$"
ARTIFACT_URI_RE = r"^(file:///|https?://[^/\s]+)\S*$"


@dataclass(frozen=True)
class RegisterCluster:
    cluster: Cluster


@dataclass(frozen=True)
class RegisterBuild:
    build: Build
    caller: str = ""  # who asks: the build's ``built_by`` when it names none


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


def _build_violations(b: Build) -> list[FieldViolation]:
    bad = []
    if not re.match(BUILD_ID_RE, b.id):
        bad.append(FieldViolation("build.id", "letters, digits, '.', '_' and '-'; at most 128"))
    if b.image and b.artifact is not None:
        bad.append(FieldViolation("build.artifact", "an image or an artifact, not both"))
    elif b.image:
        if not re.match(IMAGE_DIGEST_RE, b.image):
            bad.append(
                FieldViolation(
                    "build.image", f"must be pinned by digest, NAME@sha256:<64 hex>, not {_shown(b.image)}"
                )
            )
        if b.cmd:
            bad.append(FieldViolation("build.cmd", "only with an artifact (an image runs its own)"))
    elif b.artifact is not None:
        a = b.artifact
        if not re.match(ARTIFACT_URI_RE, a.uri):
            bad.append(
                FieldViolation(
                    "build.artifact.uri", f"must be file://, http:// or https://, not {_shown(a.uri)}"
                )
            )
        if not re.match(SHA256_RE, a.sha256):
            bad.append(
                FieldViolation(
                    "build.artifact.sha256", "must be the sha256 of the file: 64 lowercase hex digits"
                )
            )
        if not b.cmd.strip():
            bad.append(FieldViolation("build.cmd", "an artifact build needs the command that runs it"))
    else:
        bad.append(FieldViolation("build.image", "a build is an image (NAME@sha256:...) or an artifact"))
    return bad


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 80 else f"{text[:70]!r}... ({len(text)} characters)"


def _differences(a: Build, b: Build) -> list[str]:
    """What differs between two builds, leaving out when they were registered (the log says that)."""

    def what(x: Build) -> dict[str, object]:
        return {f.name: getattr(x, f.name) for f in fields(Build) if f.name != "registered"}

    theirs = what(b)
    return [name for name, value in what(a).items() if value != theirs[name]]


def decide_build(existing: Build | None, cmd: RegisterBuild) -> list[BuildRegistered]:
    """Validate, then register once: the same build again changes nothing; anything else under a
    registered id is a conflict (builds are immutable). A build that names no ``built_by`` is the
    caller's; repeating it (CI re-running a job, under any token) is the same build."""
    b = cmd.build
    bad = _build_violations(b)
    if bad:
        raise ValidationFailed(bad)
    if existing is not None:
        differ = _differences(existing, b if b.built_by else replace(b, built_by=existing.built_by))
        if not differ:
            return []
        raise Conflict(
            f"build {b.id!r} is already registered with another {', '.join(differ)}; builds are immutable",
            hint="register what changed as a new build, under a new id",
        )
    return [BuildRegistered(b if b.built_by else replace(b, built_by=cmd.caller))]
