"""The largest request fits in one NATS message: the gateway's body limit comes from the server's
``max_payload``, an event that would still be too large (headers counted) is refused before it is
sent (413 / RESOURCE_EXHAUSTED, nothing written), and a server error that drops a connection is
followed by a reconnect, never by a connection closed for good (issue 10)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import grpc
import pytest
from bay.v1 import group_pb2, registry_pb2

from libs.errors import BayError, TooLarge
from libs.events import EventMeta, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.natsserver import free_port, nats_server_binary, wait_for_port
from services.gateway.backends import open_backends
from services.gateway.settings import GatewaySettings
from tests import natsauth
from tests.integration.gateway_harness import bearer, start_gateway, start_stack
from tests.integration.registry_harness import RunningRegistry, start_registry
from tests.poll import poll_until


def body_of(size: int, name: str) -> bytes:
    """A group spec of exactly ``size`` bytes of JSON (the padding in an environment variable)."""
    base = json.dumps({"name": name, "cmd": "sleep 1", "env": {"PAD": ""}}).encode()
    return base.replace(b'"PAD": ""', b'"PAD": "' + b"x" * (size - len(base)) + b'"')


async def post(stack_client: object, body: bytes, token: str) -> tuple[int, dict[str, object]]:
    resp = await stack_client.post(  # type: ignore[attr-defined]
        "/v1/groups", content=body, headers={"Content-Type": "application/json", **bearer(token)}
    )
    return resp.status_code, resp.json()


async def test_the_largest_body_is_stored_and_the_issues_body_is_a_413(
    fresh_stream: str, tmp_path: Path
) -> None:
    stack = await start_stack(fresh_stream, tmp_path)
    try:
        limit = stack.gateway.backends.max_body_bytes
        assert limit < stack.gateway.backends.events.max_message_bytes  # room for envelope and headers
        status, _ = await post(stack.client, body_of(limit, "big"), stack.registry.token)
        assert status == 201  # the largest body the gateway takes is one event

        before = await stack.last_sequence()
        status, err = await post(stack.client, body_of(1_048_300, "huge"), stack.registry.token)
        assert status == 413 and err["error"] == "body_too_large" and str(limit) in str(err["message"])
        assert await stack.last_sequence() == before
        # the registry is still on NATS: the next command is served
        status, _ = await post(stack.client, body_of(1000, "small"), stack.registry.token)
        assert status == 201
        assert stack.registry.conn.connected
    finally:
        await stack.stop()


def ghost_scale(padding: int) -> tuple[str, object]:
    env = make_envelope(
        to_pb(m.GroupScaled(1, 0, "x" * padding)),
        aggregate_type="group",
        aggregate_id="padded",
        aggregate_version=1,
        meta=EventMeta("test"),
    )
    return subjects.group("padded"), env


async def test_an_event_over_max_payload_with_its_headers_is_refused_and_nothing_is_sent(
    fresh_stream: str, tmp_path: Path
) -> None:
    reg = await start_registry(fresh_stream, tmp_path)
    try:
        max_payload = reg.log.max_message_bytes
        subject, env = ghost_scale(0)
        overhead = len(env.SerializeToString())  # type: ignore[attr-defined]
        # the payload alone fits (nats-py's own check passes it); with its headers it does not
        subject, env = ghost_scale(max_payload - overhead - 20)
        assert len(env.SerializeToString()) <= max_payload  # type: ignore[attr-defined]
        before = await reg.log.last_sequence()
        with pytest.raises(TooLarge) as info:
            await reg.log.append(subject, env)  # type: ignore[arg-type]
        assert str(max_payload) in info.value.message and "nothing was written" in info.value.message
        [batched] = await reg.log.append_batch([(subject, env)])  # type: ignore[list-item]
        assert isinstance(batched, TooLarge)
        assert reg.conn.connected and await reg.log.last_sequence() == before

        await register_local(reg)
        before = await reg.log.last_sequence()
        spec = group_pb2.GroupSpec(name="huge", cmd="run", cluster="local", env={"PAD": "x" * 2_000_000})
        with pytest.raises(grpc.aio.AioRpcError) as rpc:
            await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=reg.md())
        assert rpc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(max_payload) in (rpc.value.details() or "")
        assert await reg.log.last_sequence() == before
    finally:
        await reg.stop()


async def test_a_server_error_that_drops_the_connection_is_followed_by_a_reconnect(
    fresh_stream: str, tmp_path: Path
) -> None:
    """nats-py closes a connection for good on ``-ERR 'Maximum Payload Violation'``; Bay's does not."""
    reg = await start_registry(fresh_stream, tmp_path)
    try:
        client = reg.conn.client
        payload = b"x" * (client.max_payload - 10)  # under nats-py's check; over the server's with headers
        await client.publish("bay.test.oversize", payload, headers={"Padding": "p" * 100})
        await poll_until(lambda: not reg.conn.connected, "the server dropping the connection", 10)
        await poll_until(lambda: reg.conn.connected, "a reconnect", 10)
        await register_local(reg)
        await create(reg, "after")  # the registry appends and folds again
    finally:
        await reg.stop()


async def register_local(reg: RunningRegistry) -> None:
    await reg.stub.RegisterCluster(
        registry_pb2.RegisterClusterRequest(cluster=group_pb2.Cluster(name="local", backend="local")),
        metadata=reg.md(),
    )


async def create(reg: RunningRegistry, name: str) -> None:
    spec = group_pb2.GroupSpec(name=name, cmd="run", cluster="local")
    await reg.stub.CreateGroup(registry_pb2.CreateGroupRequest(spec=spec), metadata=reg.md(), timeout=10)


def start_small_nats(tmp_path: Path, max_payload: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = tmp_path / "small.conf"
    store = tmp_path / "small-js"
    conf.write_text(
        f'listen: "127.0.0.1:{port}"\nmax_payload: {max_payload}\njetstream {{ store_dir: "{store}" }}\n'
    )
    proc = subprocess.Popen(
        [nats_server_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert wait_for_port("127.0.0.1", port, 10), "the small nats-server did not listen"
    return proc, f"nats://127.0.0.1:{port}"


async def test_a_registry_event_too_large_is_a_413_at_the_gateway_naming_the_limit(
    fresh_stream: str, tmp_path: Path
) -> None:
    """A registry on a server with a smaller max_payload than the gateway's: the gateway passes the
    body, the registry refuses the event (RESOURCE_EXHAUSTED), the caller gets a 413."""
    proc, small = start_small_nats(tmp_path, 64 * 1024)
    try:
        await natsauth.set_up(small)
        reg = await start_registry(small, tmp_path)
        gw = await start_gateway(fresh_stream, tmp_path, reg.port)
        try:
            await register_local(reg)
            await create(reg, "first")
            before = await reg.log.last_sequence()
            status, err = await post(gw.client, body_of(100_000, "wide"), reg.token)
            assert status == 413 and err["error"] == "too_large", err
            assert "65536" in str(err["message"]) and "nothing was written" in str(err["message"])
            assert await reg.log.last_sequence() == before
        finally:
            await gw.stop()
            await reg.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_a_body_limit_over_what_one_message_carries_is_refused_at_start_up(
    fresh_stream: str, tmp_path: Path
) -> None:
    settings = GatewaySettings(nats_url=fresh_stream, data_dir=tmp_path, max_body_bytes=2 * 1024 * 1024)
    with pytest.raises(BayError) as info:
        await open_backends(settings, nats_wait_seconds=5)
    assert "BAY_MAX_BODY_BYTES=2097152" in info.value.message and "max_payload" in info.value.message
