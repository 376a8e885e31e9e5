"""The deployer's projection: the platform view (every cluster's tasks, so a migration sees both
sides), waking the controller when a group, a task or a deployment changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from libs.events import Event
from libs.views import deployments as dv
from libs.views import tasks as tv
from libs.views.groups import Group
from libs.views.platform import PlatformView


class DeployerView(PlatformView):
    def __init__(self) -> None:
        super().__init__(cluster=None)
        self.changed: set[str] = set()  # groups to look at again
        self.wake = asyncio.Event()
        self._watchers: list[asyncio.Future[None]] = []
        # told every deployment change (before, after) from when they are hooked (metrics: once live)
        self.deployment_observers: list[Callable[[dv.Deployment | None, dv.Deployment], None]] = []

    async def next_deployment_change(self) -> None:
        """Returns at the next deployment event folded."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watchers.append(fut)
        await fut

    def _touch(self, group: str) -> None:
        self.changed.add(group)
        self.wake.set()

    def on_group(self, before: Group | None, after: Group) -> None:
        self._touch(after.name)

    def on_task(self, before: tv.Task | None, after: tv.Task, ev: Event) -> None:
        self._touch(after.group)

    def on_deployment(self, before: dv.Deployment | None, after: dv.Deployment, ev: Event) -> None:
        self._touch(after.group)
        for observe in self.deployment_observers:
            observe(before, after)
        watchers, self._watchers = self._watchers, []
        for fut in watchers:
            if not fut.done():
                fut.set_result(None)
