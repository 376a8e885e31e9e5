"""Prometheus service discovery (``http_sd_configs``): every Bay process and every ready task that
declares a metrics port, as Prometheus' HTTP SD format has it: a JSON list of
``{"targets": ["host:port"], "labels": {...}}``, the whole list every time, ``[]`` when empty.

Processes come from the setting ``BAY_METRICS_TARGETS`` (``bay up`` fills it), each labelled
``bay_kind="process"`` beside its own labels (``bay_service``, a scheduler's ``cluster``). Tasks come
from the gateway's live view: those the readiness rule of :mod:`libs.views` calls ready, with a port
named ``metrics``; reached at the task's host address (its hostname for an older launch) and that
port, scraped at the group label ``metrics_path`` of its version's spec when it has one.
"""

from __future__ import annotations

from typing import Any

from libs.addresses import format_host_port
from libs.views.platform import PlatformView

METRICS_PORT = "metrics"
METRICS_PATH_LABEL = "metrics_path"
DEFAULT_PATH = "/metrics"


def task_targets(view: PlatformView) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for group_name, ids in view.task_view.by_group.items():
        g = view.live_group(group_name)
        if g is None:
            continue
        for task_id in sorted(ids):
            task = view.tasks.get(task_id)
            if task is None or task.terminal:
                continue
            port = task.ports.get(METRICS_PORT)
            if not port or not view.is_ready(task):
                continue
            spec = g.spec_of(task.group_version)
            labels = {
                "bay_kind": "task",
                "group": task.group,
                "service": task.service or g.service,
                "cluster": task.cluster or spec.cluster,
                "version": str(task.group_version),
                "build": spec.build or "",
                "host": task.hostname,
                "task": task.id,
            }
            path = spec.labels.get(METRICS_PATH_LABEL, "")
            if path and path != DEFAULT_PATH:
                labels["__metrics_path__"] = path
            out.append({"targets": [format_host_port(task.host, port)], "labels": labels})
    return out


def process_targets(configured: list[Any]) -> list[dict[str, Any]]:
    """``BAY_METRICS_TARGETS``' entries (validated by the settings) in the SD format."""
    return [{"targets": [t.address], "labels": {**t.labels, "bay_kind": "process"}} for t in configured]
