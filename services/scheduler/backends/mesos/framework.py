"""What the framework tells the master about itself, and the check that a master is there at all."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from libs.errors import Unavailable

from . import http
from .config import MesosBackendConfig

Json = dict[str, Any]


def framework_info(config: MesosBackendConfig, framework_id: str | None) -> Json:
    """FrameworkInfo for SUBSCRIBE; with the id of the framework to take over, if any. Checkpointing
    lets tasks outlive a restarted agent; pymesos adds the capabilities."""
    info: Json = {
        "user": config.user,
        "name": config.framework_name,
        "failover_timeout": config.failover_timeout,
        "checkpoint": True,
        "hostname": socket.gethostname(),
    }
    if config.role != "*":
        info["role"] = config.role
    if framework_id:
        info["id"] = {"value": framework_id}
    return info


async def probe_master(config: MesosBackendConfig) -> str:
    """Fail at once, with the reason, when nothing listens at the master's address (pymesos would
    retry in silence until the subscribe timeout). Something that listens but answers ``/version``
    wrongly may still come good: that is returned as the problem to report if it does not."""
    master = config.master_address
    probe = http.Pool(min(5.0, config.subscribe_timeout))
    try:
        conn = await probe.connection(master)
    except http.HttpError as exc:
        raise Unavailable(
            f"cannot reach the Mesos master at {config.master}: {exc}",
            hint="check BAY_MESOS_MASTER and that the master is up",
        ) from exc
    try:
        answer = await asyncio.wait_for(conn.send(http.get(master, "/version")), probe.timeout)
        return "" if answer.status == 200 else f"GET /version answered {answer.status}"
    except (http.HttpError, TimeoutError) as exc:
        return f"GET /version: {exc or type(exc).__name__}"
    finally:
        await probe.close()
