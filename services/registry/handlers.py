"""The registry's service layer: a command in, events appended, the resulting state out.

Each handler first looks up the command's idempotency key (a retry gets the first result before
anything is decided: the state may have moved on since), then reads the folded state, asks the pure
domain what happens, appends the events with the subject's last sequence as the expected one (a
concurrent writer loses with Conflict, never overwrites), then waits until its own projection has
folded the append (read-your-writes). Keys are explained in :mod:`services.registry.domain.registry`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from libs.errors import NotFound
from libs.eventlog import EventLog, Projection, Record
from libs.events import EventMeta, decode, make_envelope, subjects, to_pb
from libs.events.model import GROUP_EVENTS, NothingChanged, RegistryEvent
from libs.views.groups import recorded
from services.registry.domain import group as g
from services.registry.domain.catalog import (
    Build,
    Cluster,
    RegisterBuild,
    RegisterCluster,
    decide_build,
    decide_cluster,
)
from services.registry.domain.registry import (
    Command,
    RegistryState,
    Seen,
    check_references,
    first_use,
    request_of,
)


def fold(state: RegistryState, rec: Record) -> RegistryState:
    """The projection's ``apply``: one stored event into the registry state."""
    return state.fold(rec)


@dataclass(frozen=True)
class Outcome:
    sequence: int  # where the (first) event landed; the aggregate's last one when nothing changed
    duplicate: bool = False


class Registry:
    def __init__(
        self, log: EventLog, projection: Projection[RegistryState], clock: Callable[[], float] = time.time
    ) -> None:
        self.log = log
        self.projection = projection
        self.clock = clock

    @property
    def state(self) -> RegistryState:
        return self.projection.state

    def _first(
        self, aggregate_type: str, aggregate_id: str, cmd: Command, meta: EventMeta
    ) -> tuple[EventMeta, Seen | None]:
        """The meta naming the request its key is for, and where that request landed if it is a retry."""
        if not meta.idempotency_key:
            return meta, None
        command, digest = request_of(cmd)
        meta = meta.for_request(command, digest)
        subject = subjects.subject_for(aggregate_type, aggregate_id)
        return meta, first_use(self.state, meta.idempotency_key, subject, command, digest, self.clock())

    async def _append(
        self, aggregate_type: str, aggregate_id: str, events: Sequence[RegistryEvent], meta: EventMeta
    ) -> Outcome:
        subject = subjects.subject_for(aggregate_type, aggregate_id)
        expected = self.state.subject_seq.get(subject, 0)
        if not events and meta.idempotency_key:
            events = [NothingChanged(meta.command_name)]  # so that the key is remembered
        if not events:
            return Outcome(expected)
        first = 0
        duplicate = False
        version = self.state.version_of(subject)
        for i, event in enumerate(events):
            env = make_envelope(
                to_pb(event),
                aggregate_type=aggregate_type,
                aggregate_id=aggregate_id,
                aggregate_version=version + i + 1,
                meta=meta,
                index=i,
                now=self.clock(),
            )
            # a command's later events are caused by the one before, in the same chain
            meta = meta.caused_by(env.event_id)
            res = await self.log.append(subject, env, expected_last_seq=expected)
            expected = res.sequence
            first = first or res.sequence
            duplicate = duplicate or res.duplicate
        await self.projection.wait_for(expected)
        return Outcome(first, duplicate)

    async def group_command(self, cmd: g.GroupCommand, meta: EventMeta) -> tuple[g.Group, Outcome]:
        name = cmd.spec.name if isinstance(cmd, g.CreateGroup | g.UpdateGroup) else cmd.name
        meta, seen = self._first(subjects.GROUP, name, cmd, meta)
        if seen is not None:
            return await self.group_at(name, seen.sequence), Outcome(seen.sequence, duplicate=True)
        if isinstance(cmd, g.RollbackGroup):
            cmd = g.RollbackGroup(
                cmd.name, cmd.version, await self.spec_at(cmd.name, cmd.version), cmd.expected_version
            )
        current = self.state.groups.get(name)
        check_references(self.state, cmd)
        events = g.decide(current, cmd)
        outcome = await self._append(subjects.GROUP, name, events, meta)
        return self.state.groups[name], outcome

    async def register_cluster(self, cluster: Cluster, meta: EventMeta) -> tuple[Cluster, Outcome]:
        cmd = RegisterCluster(cluster)
        meta, seen = self._first(subjects.CLUSTER, cluster.name, cmd, meta)
        if seen is not None:
            return self.state.clusters[cluster.name], Outcome(seen.sequence, duplicate=True)
        events = decide_cluster(self.state.clusters.get(cluster.name), cmd)
        outcome = await self._append(subjects.CLUSTER, cluster.name, events, meta)
        return self.state.clusters[cluster.name], outcome

    async def register_build(self, build: Build, meta: EventMeta) -> tuple[Build, Outcome]:
        cmd = RegisterBuild(build, meta.actor)
        meta, seen = self._first(subjects.BUILD, build.id, cmd, meta)
        if seen is not None:
            return self.state.builds[build.id], Outcome(seen.sequence, duplicate=True)
        events = decide_build(self.state.builds.get(build.id), cmd)
        outcome = await self._append(subjects.BUILD, build.id, events, meta)
        return self.state.builds[build.id], outcome

    # ---- queries ----

    def get_group(self, name: str) -> g.Group:
        grp = self.state.groups.get(name)
        if grp is None or grp.deleted:
            raise NotFound(f"group {name!r} does not exist")
        return grp

    def list_groups(self, cluster: str = "", service: str = "") -> list[g.Group]:
        out = [
            x
            for x in self.state.groups.values()
            if not x.deleted
            and (not cluster or x.spec.cluster == cluster)
            and (not service or x.spec.service_name == service)
        ]
        return sorted(out, key=lambda x: x.spec.name)

    async def history(self, name: str) -> list[Record]:
        subject = subjects.group(name)
        if subject not in self.state.subject_seq:
            raise NotFound(f"group {name!r} has no history")
        out = []
        last = self.state.subject_seq[subject]
        async with aclosing(self.log.read(1, subject_filter=subject)) as records:
            async for rec in records:
                out.append(rec)
                if rec.sequence >= last:
                    break
        return out

    async def group_at(self, name: str, sequence: int) -> g.Group:
        """The group as it was once the event at ``sequence`` was folded: a retried command's first
        result, whatever happened to the group since."""
        grp: g.Group | None = None
        for rec in await self.history(name):
            if rec.sequence > sequence:
                break
            ev = decode(rec)
            if isinstance(ev.data, GROUP_EVENTS):
                grp = g.apply(grp, ev.data, ev.at)
            elif isinstance(ev.data, NothingChanged):
                grp = recorded(grp)
        if grp is None:  # the log holds it, so this is only a key from a subject's lost history
            return self.get_group(name)
        return grp

    async def spec_at(self, name: str, version: int) -> g.GroupSpec | None:
        """The spec a group had at a version, from its history in the log."""
        found = None
        for rec in await self.history(name):
            event = decode(rec).data
            if isinstance(event, g.GroupCreated | g.GroupUpdated | g.GroupRolledBack):
                if event.version == version:
                    found = event.spec
        return found

    def watch(self, from_seq: int, subject_filter: str | None) -> AsyncIterator[Record]:
        return self.log.read(from_seq, subject_filter=subject_filter, follow=True)
