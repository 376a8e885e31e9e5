"""Builds over REST: registered once (an image by digest, or an artifact and its command), listed,
read by id; a repeat is a no-op, a change under the same id a 409, a tag-only image a 422 naming it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.integration.gateway_harness import Stack, start_stack

DIGEST = "d" * 64
ARTIFACT_BUILD = {
    "id": "api-7",
    "artifact": {"uri": "https://artifacts.local/api-7.tar.gz", "sha256": "a" * 64, "extract": True},
    "cmd": "./api --port $PORT0",
    "commit": "0123abc",
    "branch": "main",
    "metadata": {"pipeline": "41"},
}


@pytest_asyncio.fixture
async def stack(fresh_stream: str, tmp_path: Path) -> AsyncIterator[Stack]:
    s = await start_stack(fresh_stream, tmp_path)
    yield s
    await s.stop()


async def test_an_artifact_build_is_registered_once_and_read_back(stack: Stack) -> None:
    c, op = stack.client, stack.operator
    made = await c.post("/v1/builds", json=ARTIFACT_BUILD, headers={**op, "Idempotency-Key": "ci-41"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["artifact"] == {**ARTIFACT_BUILD["artifact"], "executable": False}  # type: ignore[dict-item]
    assert (body["cmd"], body["branch"], body["built_by"], body["image"]) == (
        "./api --port $PORT0",
        "main",
        "ops",  # the caller's token, as no builder was named
        "",
    )
    before = await stack.last_sequence()
    again = await c.post("/v1/builds", json=ARTIFACT_BUILD, headers=op)  # CI re-ran the job
    assert again.status_code == 201 and again.json() == body
    assert await stack.last_sequence() == before

    changed = {**ARTIFACT_BUILD, "commit": "fffffff"}
    clash = await c.post("/v1/builds", json=changed, headers=op)
    assert clash.status_code == 409 and "immutable" in clash.json()["message"]

    image = {"id": "api-6", "image": f"registry.local/api@sha256:{DIGEST}", "built_by": "jenkins"}
    assert (await c.post("/v1/builds", json=image, headers=op)).status_code == 201
    listed = (await c.get("/v1/builds", headers=stack.viewer)).json()["builds"]
    assert [(b["id"], b["built_by"]) for b in listed] == [("api-7", "ops"), ("api-6", "jenkins")]
    one = await c.get("/v1/builds/api-7", headers=stack.viewer)
    assert one.status_code == 200 and one.json() == body
    missing = await c.get("/v1/builds/api-99", headers=stack.viewer)
    assert missing.status_code == 404 and "api-99" in missing.json()["message"]


async def test_invalid_builds_name_their_field_and_append_nothing(stack: Stack) -> None:
    c, op = stack.client, stack.operator
    before = await stack.last_sequence()

    async def fields(body: dict[str, object]) -> list[str]:
        resp = await c.post("/v1/builds", json=body, headers=op)
        assert resp.status_code == 422, resp.text
        return [v["field"] for v in resp.json()["violations"]]

    assert await fields({"id": "web-1", "image": "registry.local/web:1.2.3"}) == ["image"]
    assert await fields({**ARTIFACT_BUILD, "image": f"web@sha256:{DIGEST}"}) == ["artifact"]
    assert await fields({**ARTIFACT_BUILD, "cmd": ""}) == ["cmd"]
    bad_digest = {**ARTIFACT_BUILD, "artifact": {"uri": "file:///srv/a.tgz", "sha256": "xyz"}}
    assert await fields(bad_digest) == ["artifact.sha256"]
    bad_uri = {**ARTIFACT_BUILD, "artifact": {"uri": "ftp://host/a.tgz", "sha256": "a" * 64}}
    assert await fields(bad_uri) == ["artifact.uri"]
    assert await fields({"id": "web-1"}) == ["image"]
    assert await stack.last_sequence() == before
