"""Deployment events go through the one decoder, and every PlatformView folds them."""

from __future__ import annotations

from bay.v1 import envelope_pb2

from libs.eventlog.port import Record
from libs.events import EventMeta, decode, make_envelope, subjects, to_pb
from libs.events import model as m
from libs.spec import GroupSpec
from libs.views.platform import PlatformView

SPEC = GroupSpec(name="web", cmd="v2", instances=3)
STRATEGY = m.Strategy(
    "canary",
    minimum_health_capacity=0.5,
    steps=(
        m.CanaryStep("share", 0.25),
        m.CanaryStep("weight", 10.0),
        m.CanaryStep("pause", None),
        m.CanaryStep("pause", 30.0),
        m.CanaryStep("analysis", None, m.Analysis(60.0, (m.Threshold("custom:errors", "<", 0.01),), "pass")),
    ),
    min_ready_seconds=0.0,
    no_auto_rollback=True,
)
EVENTS: list[m.DeploymentEvent] = [
    m.DeploymentCreated(
        "web-1", STRATEGY, 1, "b1", "local", SPEC, False, SPEC.model_copy(update={"cmd": "v1"})
    ),
    m.DeploymentTargetSet("web-1", 2),
    m.DeploymentStepStarted("web-1", 0, "share 25%"),
    m.DeploymentProgressed("web-1", 1, 1, 3, 2, 6, 3),
    m.DeploymentStepFinished("web-1", 0, "done", ""),
    m.DeploymentPaused("web-1", "look"),
    m.DeploymentResumed("web-1"),
    m.DeploymentPromoted("web-1", True),
    m.DeploymentAborted("web-1", "enough"),
    m.DeploymentFailed("web-1", "why"),
    m.DeploymentRolledBack("web-1", "why", 1),
    m.DeploymentSucceeded("web-2"),
    m.DeploymentSuperseded("web-2", "web-3"),
]


def _record(seq: int, event: m.DeploymentEvent, at: float) -> Record:
    env: envelope_pb2.Envelope = make_envelope(
        to_pb(event), aggregate_type=subjects.DEPLOY, aggregate_id="web", aggregate_version=seq,
        meta=EventMeta.command("alice"), now=at,
    )  # fmt: skip
    return Record(seq, subjects.deploy("web"), env)


def test_every_deployment_event_round_trips_through_the_one_decoder() -> None:
    for i, event in enumerate(EVENTS, 1):
        assert decode(_record(i, event, 1000.0 + i)).data == event


def test_a_platform_view_folds_a_deployment() -> None:
    view = PlatformView()
    for i, event in enumerate(EVENTS[:8], 1):
        view.fold(_record(i, event, 1000.0 + i))
    d = view.deployments.current("web")
    assert d is not None and d.state == "running" and d.to_version == 2
    assert d.steps[0].state == "done" and d.new_ready == 1 and d.actor == "alice"
    assert d.paused_seconds == 1.0 and d.promote_all
    assert view.deployments.last_sequence["web"] == 8
    view.fold(_record(9, EVENTS[8], 1010.0))
    assert view.deployments.current("web") is not None  # aborted: on its way back
    view.fold(_record(10, EVENTS[10], 1011.0))
    assert view.deployments.current("web") is None
    assert view.deployments.latest("web").state == "aborted"  # type: ignore[union-attr]
    assert view.skipped == 0
