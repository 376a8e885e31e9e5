"""A NATS connection outlives a stall: answers that come after their caller gave up (a flush's PONG,
an acknowledgement) do not leave the client deaf. nats-py on its own ends its read loop on a late
PONG, and the connection then hears nothing again while it still says "connected"."""

from __future__ import annotations

import pytest
from nats.errors import FlushTimeoutError

from libs.natsconn import connect
from tests.integration.stall_proxy import StallProxy


async def test_a_flush_that_timed_out_during_a_stall_leaves_the_connection_working(
    fresh_stream: str,
) -> None:
    proxy = await StallProxy(fresh_stream).start()
    conn = await connect(proxy.url, name="stall-test", wait_seconds=5)
    try:
        proxy.stall("down")
        with pytest.raises(FlushTimeoutError):
            await conn.client.flush(timeout=0.3)  # type: ignore[arg-type]
        proxy.resume()  # the late PONG arrives now
        await conn.client.flush(timeout=5)
        js = conn.client.jetstream(timeout=5)
        info = await js.account_info()  # a request: its answer is read by the same read loop
        assert info is not None
    finally:
        await conn.close()
        await proxy.stop()
