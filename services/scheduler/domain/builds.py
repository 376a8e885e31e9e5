"""A group's spec as a cluster runs it: a build resolved to what it is (an image, or an artifact and
the command that runs it). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from libs.events.model import Artifact, Build
from libs.spec import GroupSpec


class Runnable(NamedTuple):
    spec: GroupSpec  # no build left: image or cmd set from it
    fetch: tuple[Artifact, ...] = ()


def runnable(spec: GroupSpec, builds: Mapping[str, Build]) -> Runnable | None:
    """None when the spec names a build this cluster has not seen (the registry checks builds
    exist, so only a log read before the build's event can lack it: not runnable yet)."""
    if not spec.build:
        return Runnable(spec)
    build = builds.get(spec.build)
    if build is None:
        return None
    if build.artifact is not None:
        # the spec's own cmd, if it gives one, runs the artifact instead of the build's
        cmd = spec.cmd or build.cmd
        return Runnable(spec.model_copy(update={"cmd": cmd, "image": None, "build": None}), (build.artifact,))
    return Runnable(spec.model_copy(update={"image": build.image, "build": None}))
