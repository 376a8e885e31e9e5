"""The registry's whole state and its fold: the shared view of groups, clusters and builds, plus
what is the registry's own (each subject's last sequence and version, idempotency keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from libs.errors import FieldViolation, ValidationFailed
from libs.eventlog.port import Record
from libs.events import UndecodableEvent, decode, subjects
from libs.views import ImpossibleEvent, PlatformView
from services.registry.domain import group as g

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
PRUNE_EVERY = 10_000  # expired keys are dropped when the sequence is a multiple of this

# the registry's own aggregates; every other subject (tasks, deployments...) is not its state
_MINE = (subjects.GROUP_PREFIX, subjects.CLUSTER_PREFIX, subjects.BUILD_PREFIX)


@dataclass(frozen=True)
class Seen:
    """A command already carried out: where its event landed."""

    subject: str
    sequence: int
    time: float


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
            self.idempotency[key] = Seen(subject, seq, ev.at)
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


def seen_recently(state: RegistryState, key: str, now: float) -> Seen | None:
    """Where a command with this idempotency key landed, if within the TTL."""
    seen = state.idempotency.get(key)
    return seen if seen is not None and seen.time >= now - IDEMPOTENCY_TTL_SECONDS else None


def expire_keys(state: RegistryState, now: float) -> None:
    cutoff = now - IDEMPOTENCY_TTL_SECONDS
    for k in [k for k, v in state.idempotency.items() if v.time < cutoff]:
        del state.idempotency[k]
