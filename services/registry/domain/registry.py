"""The registry's whole state and its fold: groups, clusters, builds, idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from libs.errors import FieldViolation, ValidationFailed
from services.registry.domain import group as g
from services.registry.domain.catalog import Build, BuildRegistered, Cluster, ClusterRegistered

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
PRUNE_EVERY = 10_000  # expired keys are dropped when the sequence is a multiple of this
_GROUP_PREFIX_LEN = len("bay.ev.group.")

Event = g.GroupEvent | ClusterRegistered | BuildRegistered


@dataclass(frozen=True)
class Seen:
    """A command already carried out: where its event landed."""

    subject: str
    sequence: int
    time: float


@dataclass
class RegistryState:
    """The fold's accumulator: each aggregate inside is an immutable value replaced on change."""

    groups: dict[str, g.Group] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    builds: dict[str, Build] = field(default_factory=dict)
    idempotency: dict[str, Seen] = field(default_factory=dict)
    subject_seq: dict[str, int] = field(default_factory=dict)

    def live_groups(self) -> list[g.Group]:
        return [x for x in self.groups.values() if not x.deleted]


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


def apply(state: RegistryState, subject: str, seq: int, event: Event, at: float, key: str) -> RegistryState:
    if isinstance(event, ClusterRegistered):
        # a later registration (another scheduler address) keeps the first one's time
        first = state.clusters.get(event.cluster.name)
        registered = first.registered if first else at
        state.clusters[event.cluster.name] = replace(event.cluster, registered=registered)
    elif isinstance(event, BuildRegistered):
        state.builds[event.build.id] = replace(event.build, registered=at)
    else:  # group events are by far the most frequent
        name = subject[_GROUP_PREFIX_LEN:]
        state.groups[name] = g.apply(state.groups.get(name), event, at)
    state.subject_seq[subject] = seq
    if key:
        state.idempotency[key] = Seen(subject, seq, at)
    if seq % PRUNE_EVERY == 0:  # by the event's own time: a replay prunes exactly as the live fold did
        expire_keys(state, at)
    return state


def seen_recently(state: RegistryState, key: str, now: float) -> Seen | None:
    """Where a command with this idempotency key landed, if within the TTL."""
    seen = state.idempotency.get(key)
    return seen if seen is not None and seen.time >= now - IDEMPOTENCY_TTL_SECONDS else None


def expire_keys(state: RegistryState, now: float) -> None:
    cutoff = now - IDEMPOTENCY_TTL_SECONDS
    for k in [k for k, v in state.idempotency.items() if v.time < cutoff]:
        del state.idempotency[k]
