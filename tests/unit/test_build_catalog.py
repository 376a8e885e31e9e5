"""Registering a build (pure domain): an image by digest or an artifact and its command, never both;
once registered a build never changes (the same again is a no-op, anything else a conflict)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from libs.errors import Conflict, ValidationFailed
from services.registry.domain.catalog import (
    Artifact,
    Build,
    BuildRegistered,
    RegisterBuild,
    decide_build,
)

DIGEST = "a" * 64
IMAGE = Build("api-42", f"registry.local:5000/team/api:42@sha256:{DIGEST}", commit="c0ffee")
TARBALL = Build(
    "api-43",
    "",
    commit="beef",
    branch="main",
    built_by="ci",
    metadata={"pipeline": "7"},
    artifact=Artifact("https://artifacts.local/api-43.tar.gz", "b" * 64, extract=True),
    cmd="./api --port $PORT0",
)


def fields_of(build: Build, caller: str = "ci") -> list[str]:
    with pytest.raises(ValidationFailed) as err:
        decide_build(None, RegisterBuild(build, caller))
    return [v.field for v in err.value.violations]


def test_an_image_pinned_by_digest_or_an_artifact_with_its_command_registers() -> None:
    assert decide_build(None, RegisterBuild(IMAGE, "ci")) == [BuildRegistered(replace(IMAGE, built_by="ci"))]
    assert decide_build(None, RegisterBuild(TARBALL, "someone")) == [BuildRegistered(TARBALL)]


def test_a_tag_is_not_a_build() -> None:
    assert fields_of(replace(IMAGE, image="registry.local/api:42")) == ["build.image"]
    assert fields_of(replace(IMAGE, image=f"api@sha256:{'a' * 63}")) == ["build.image"]


def test_an_artifact_needs_a_fetchable_uri_its_digest_and_a_command() -> None:
    art = TARBALL.artifact
    assert art is not None
    assert fields_of(replace(TARBALL, artifact=replace(art, uri="s3://bucket/x.tgz"))) == [
        "build.artifact.uri"
    ]
    assert fields_of(replace(TARBALL, artifact=replace(art, uri="file://relative/x"))) == [
        "build.artifact.uri"
    ]
    assert fields_of(replace(TARBALL, artifact=replace(art, sha256="B" * 64))) == ["build.artifact.sha256"]
    assert fields_of(replace(TARBALL, artifact=replace(art, sha256=""))) == ["build.artifact.sha256"]
    assert fields_of(replace(TARBALL, cmd=" ")) == ["build.cmd"]
    ok = replace(TARBALL, artifact=replace(art, uri="file:///srv/builds/api-43.tar.gz"))
    assert decide_build(None, RegisterBuild(ok)) == [BuildRegistered(ok)]


def test_image_and_artifact_exclude_each_other_and_one_is_needed() -> None:
    assert fields_of(replace(TARBALL, image=IMAGE.image)) == ["build.artifact"]
    assert fields_of(replace(IMAGE, image="")) == ["build.image"]
    assert fields_of(replace(IMAGE, cmd="./run")) == ["build.cmd"]
    assert fields_of(replace(IMAGE, id="../x")) == ["build.id"]


def test_the_same_build_again_is_a_no_op_by_anyone() -> None:
    first = replace(IMAGE, built_by="ci", registered=1000.0)
    assert decide_build(first, RegisterBuild(IMAGE, "another-token")) == []
    assert decide_build(TARBALL, RegisterBuild(replace(TARBALL, metadata={"pipeline": "7"}))) == []


@pytest.mark.parametrize(
    "change",
    [
        {"commit": "other"},
        {"branch": "dev"},
        {"built_by": "mallory"},
        {"metadata": {"pipeline": "8"}},
        {"cmd": "./api --other"},
        {"artifact": Artifact("https://artifacts.local/api-43.tar.gz", "c" * 64, extract=True)},
        {"artifact": Artifact("https://artifacts.local/api-43.tar.gz", "b" * 64, extract=False)},
    ],
)
def test_anything_else_under_a_registered_id_is_a_conflict(change: dict[str, object]) -> None:
    with pytest.raises(Conflict, match="immutable") as err:
        decide_build(TARBALL, RegisterBuild(replace(TARBALL, **change)))  # type: ignore[arg-type]
    assert f"with another {next(iter(change))};" in err.value.message
