"""The registry's whole state and its fold: the shared view of groups, clusters and builds, plus
what is the registry's own (each subject's last sequence and version, idempotency keys).

Idempotency keys. A key names one request: a command, its target and its parameters
(:func:`request_of`). The key and the request travel in the envelope of the event the command
appended, so the keys are rebuilt from the log on every replay and survive any restart (snapshots
only carry them along). A command that changes nothing still appends one event when it has a key,
``NothingChanged``: a key kept only in memory would be forgotten by a restart, and a retry after
someone else's change would then be carried out again. Without a key, a no-op appends nothing. The
cost is one small event per keyed no-op (the CLI sends a key with every change, so an unchanged
``bay apply`` shows in the history as "UpdateGroup: nothing changed").
A retry of the same request within the TTL gets the first result; the same key with another
request (another command, target or parameters) is refused, naming ``idempotency_key``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel

from libs.errors import FieldViolation, ValidationFailed
from libs.eventlog.port import Record
from libs.events import UndecodableEvent, decode, subjects
from libs.views import ImpossibleEvent, PlatformView
from services.registry.domain import catalog as c
from services.registry.domain import group as g

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
PRUNE_EVERY = 10_000  # expired keys are dropped when the sequence is a multiple of this

# the registry's own aggregates; every other subject (tasks, deployments...) is not its state
_MINE = (subjects.GROUP_PREFIX, subjects.CLUSTER_PREFIX, subjects.BUILD_PREFIX)


@dataclass(frozen=True)
class Seen:
    """A command already carried out: where its event landed, and the request it was."""

    subject: str
    sequence: int
    time: float
    command: str = ""
    digest: str = ""  # "" in state from before requests were recorded: the subject alone is checked


class RegistryState(PlatformView):
    """The fold's accumulator: each aggregate inside is an immutable value replaced on change."""

    tracks_causes = False

    def __init__(self) -> None:
        super().__init__(cluster=None, keep_ended=0)
        self.idempotency: dict[str, Seen] = {}
        self.subject_seq: dict[str, int] = {}  # subject -> its last stream sequence
        self.subject_version: dict[str, int] = {}  # cluster and build subjects -> last version

    def version_of(self, subject: str) -> int:
        """The last version of a registry aggregate (0: none yet)."""
        if subject.startswith(subjects.GROUP_PREFIX):
            g = self.groups.get(subject[len(subjects.GROUP_PREFIX) :])
            return g.aggregate_version if g is not None else 0
        return self.subject_version.get(subject, 0)

    def folded(self) -> tuple[object, ...]:
        return (*super().folded(), self.idempotency, self.subject_seq, self.subject_version)

    def fold(self, rec: Record) -> Self:
        subject = rec.subject
        if not subject.startswith(_MINE):
            return self
        try:
            ev = decode(rec)
            self.apply(ev)
        except (UndecodableEvent, ImpossibleEvent) as exc:
            self.skip(rec, exc)
            return self
        # what is the registry's own, inline: this runs once per replayed event
        seq = rec.sequence
        env = ev.envelope
        self.subject_seq[subject] = seq
        if not subject.startswith(subjects.GROUP_PREFIX):  # a group's version is its fold's own
            self.subject_version[subject] = env.aggregate_version
        key = env.idempotency_key
        if key:
            self.idempotency[key] = Seen(subject, seq, ev.at, env.command, env.request_digest)
        if seq % PRUNE_EVERY == 0:  # by the event's own time: a replay prunes exactly as the live fold did
            expire_keys(self, ev.at)
        return self


def check_references(state: RegistryState, cmd: g.GroupCommand) -> None:
    """What a group spec refers to must exist: its cluster, its build."""
    if isinstance(cmd, g.CreateGroup | g.UpdateGroup):
        spec = cmd.spec
    elif isinstance(cmd, g.RollbackGroup) and cmd.spec_of_version is not None:
        spec = cmd.spec_of_version
    else:
        return
    bad = []
    if spec.cluster not in state.clusters:
        known = ", ".join(sorted(state.clusters)) or "none"
        bad.append(FieldViolation("spec.cluster", f"no cluster {spec.cluster!r} (registered: {known})"))
    if spec.build and spec.build not in state.builds:
        bad.append(FieldViolation("spec.build", f"no build {spec.build!r}; register it first"))
    if bad:
        raise ValidationFailed(bad)


Command = g.GroupCommand | c.RegisterCluster | c.RegisterBuild


def _plain(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot digest {type(value).__name__}")


def request_of(cmd: Command) -> tuple[str, str]:
    """A command's name and a digest of its parameters (the target among them): what an
    idempotency key is bound to."""
    fields = {
        f.name: getattr(cmd, f.name)
        for f in dataclasses.fields(cmd)
        if f.name != "spec_of_version"  # looked up by the registry, not part of the request
    }
    text = json.dumps(fields, default=_plain, sort_keys=True, separators=(",", ":"))
    return type(cmd).__name__, hashlib.sha256(text.encode()).hexdigest()[:32]


def first_use(
    state: RegistryState, key: str, subject: str, command: str, digest: str, now: float
) -> Seen | None:
    """Where the first request with this key landed (within the TTL), if this is that request again;
    None if the key is new; ValidationFailed if the key was used for another request."""
    seen = seen_recently(state, key, now)
    if seen is None:
        return None
    same = seen.subject == subject and (not seen.digest or (seen.command, seen.digest) == (command, digest))
    if not same:
        target = seen.subject.removeprefix(subjects.ROOT + ".").replace(".", " ", 1)
        what = seen.command or "a command"
        raise ValidationFailed(
            [
                FieldViolation(
                    "idempotency_key",
                    f"{key!r} was already used for {what} of {target} with other parameters "
                    f"(sequence {seen.sequence}); a new request needs a new key",
                )
            ]
        )
    return seen


def seen_recently(state: RegistryState, key: str, now: float) -> Seen | None:
    """Where a command with this idempotency key landed, if within the TTL."""
    seen = state.idempotency.get(key)
    return seen if seen is not None and seen.time >= now - IDEMPOTENCY_TTL_SECONDS else None


def expire_keys(state: RegistryState, now: float) -> None:
    cutoff = now - IDEMPOTENCY_TTL_SECONDS
    for k in [k for k, v in state.idempotency.items() if v.time < cutoff]:
        del state.idempotency[k]
