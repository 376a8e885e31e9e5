"""A live view that tells who waits on a group when the group or one of its tasks changed.

A reader that follows one group (the gateway's group logs, which join tasks as they start) waits
for a change instead of polling the view: ``changed = view.watch(group)`` is an
:class:`asyncio.Event` that the fold sets on each change of that group (its spec, count, deletion,
or any of its tasks); the reader clears it, looks at the view, and waits again. ``unwatch`` when
done. Setting an event is all the fold does: whatever the reader does with it runs on its own turn
of the event loop, never inside the fold.
"""

from __future__ import annotations

import asyncio

from libs.events import Event
from libs.views import tasks as tv
from libs.views.groups import Group
from libs.views.platform import PlatformView


class WatchedView(PlatformView):
    def __init__(self, cluster: str | None = None, *, keep_ended: int = tv.KEEP_ENDED) -> None:
        super().__init__(cluster, keep_ended=keep_ended)
        self._watchers: dict[str, set[asyncio.Event]] = {}

    def watch(self, group: str) -> asyncio.Event:
        changed = asyncio.Event()
        self._watchers.setdefault(group, set()).add(changed)
        return changed

    def unwatch(self, group: str, changed: asyncio.Event) -> None:
        watchers = self._watchers.get(group)
        if watchers is not None:
            watchers.discard(changed)
            if not watchers:
                del self._watchers[group]

    def _changed(self, group: str) -> None:
        for changed in self._watchers.get(group, ()):
            changed.set()

    def on_group(self, before: Group | None, after: Group) -> None:
        self._changed(after.spec.name)

    def on_task(self, before: tv.Task | None, after: tv.Task, ev: Event) -> None:
        self._changed(after.group)
