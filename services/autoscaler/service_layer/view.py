"""The autoscaler's projection: the platform view (groups, every cluster's tasks, deployments) plus
its own log on ``bay.ev.autoscale.<group>``: the policies, each group's last window snapshot and the
count-changing decisions after it (folded into the snapshot on the way), so a restart resumes the
windows where they were.

Replay rule: the state is the last ``AutoscaleWindow``'s, with every later ``AutoscaleDecided``
folded in (``domain.fold``); a new policy keeps the windows (``State.with_policy``); a removed
policy forgets them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bay.v1 import autoscale_pb2

from libs.events import Event
from libs.events import model as m
from libs.views.platform import PlatformView
from services.autoscaler.adapters.wire import decision_from_pb, policy_from_pb, window_from_pb
from services.autoscaler.domain import Decision, Policy, State, fold

KEEP_DECISIONS = 20


@dataclass
class Scaled:
    """One group's autoscaling as the log has it."""

    message: autoscale_pb2.AutoscalePolicy
    policy: Policy
    state: State
    decisions: deque[tuple[int, Decision]] = field(default_factory=lambda: deque(maxlen=KEEP_DECISIONS))
    snapshot_at: float = 0.0  # the last window snapshot's time


class AutoscalerView(PlatformView):
    def __init__(self) -> None:
        super().__init__(cluster=None)
        self.scaled: dict[str, Scaled] = {}
        self.last_sequence: dict[str, int] = {}  # per group subject: the expected last sequence
        self.aggregate_version: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}  # (group, idempotency key) -> sequence
        # told every decision folded (group, decision) from when they are hooked (metrics: once live)
        self.decision_observers: list[Callable[[str, Decision], None]] = []

    def on_other(self, ev: Event) -> None:
        data = ev.data
        if not isinstance(data, m.AUTOSCALE_EVENTS):
            return
        group = ev.aggregate_id
        self.last_sequence[group] = ev.sequence
        self.aggregate_version[group] = self.aggregate_version.get(group, 0) + 1
        if ev.envelope.idempotency_key:
            self.keys[(group, ev.envelope.idempotency_key)] = ev.sequence
        now = self.scaled.get(group)
        match data:
            case m.AutoscalePolicySet(message):
                policy = policy_from_pb(message)
                state = now.state.with_policy(policy) if now else State.initial(policy)
                kept = now.decisions if now else deque(maxlen=KEEP_DECISIONS)
                self.scaled[group] = Scaled(message, policy, state, kept, now.snapshot_at if now else 0.0)
            case m.AutoscalePolicyRemoved():
                self.scaled.pop(group, None)
            case m.AutoscaleDecided(decision) if now is not None:
                d = decision_from_pb(decision)
                now.state = fold(now.state, d)
                now.decisions.append((ev.sequence, d))
                for observe in self.decision_observers:
                    observe(group, d)
            case m.AutoscaleWindow(state) if now is not None:
                now.state = window_from_pb(state).with_policy(now.policy)
                now.snapshot_at = ev.at
