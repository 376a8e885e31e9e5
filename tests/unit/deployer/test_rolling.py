"""Rolling deployments over the simulated cluster: Marathon's bounds are never crossed."""

from __future__ import annotations

import pytest

from libs.events import model as m
from libs.spec import UpgradeStrategy
from libs.views.groups import same_run
from services.deployer.domain.bounds import bounds
from services.deployer.domain.deployment import Deploy
from tests.unit.deployer.sim import Sim, spec


def test_bounds_follow_marathon() -> None:
    s = m.Strategy(minimum_health_capacity=0.5, maximum_over_capacity=0.25)
    b = bounds(4, s)
    assert (b.min_ready, b.max_running) == (2, 5)
    b = bounds(10, m.Strategy(minimum_health_capacity=0.75, maximum_over_capacity=0.1))
    assert (b.min_ready, b.max_running) == (8, 11)


def test_both_bounds_forbidding_progress_allow_one_extra() -> None:
    b = bounds(4, m.Strategy(minimum_health_capacity=1.0, maximum_over_capacity=0.0))
    assert (b.min_ready, b.max_running) == (4, 5)


@pytest.mark.parametrize(
    ("mhc", "moc", "n"),
    [
        (1.0, 1.0, 4),
        (1.0, 0.0, 4),
        (0.5, 0.0, 4),
        (0.75, 0.25, 8),
        (0.0, 0.0, 3),
        (0.9, 0.1, 10),
        (0.5, 0.5, 1),
    ],
)
def test_rolling_deploy_stays_within_bounds(mhc: float, moc: float, n: int) -> None:
    base = spec(
        instances=n, upgrade_strategy=UpgradeStrategy(minimum_health_capacity=mhc, maximum_over_capacity=moc)
    )
    sim = Sim(base, start_delay=2)
    sim.command(
        Deploy("web", spec=base.model_copy(update={"cmd": "v2"}), strategy=m.Strategy(min_ready_seconds=1))
    )
    min_ready, max_running = sim.bounds()
    sim.run(300)
    d = sim.latest
    assert d.state == "succeeded", d
    assert sim.min_ready_seen is not None and sim.min_ready_seen >= min_ready
    assert sim.max_running_seen <= max_running
    assert sim.versions_alive() == {d.to_version: n}
    assert sim.group.settled


def test_old_versions_go_first_and_new_tasks_are_never_stopped() -> None:
    base = spec(
        instances=4, upgrade_strategy=UpgradeStrategy(minimum_health_capacity=0.5, maximum_over_capacity=0.5)
    )
    sim = Sim(base)
    sim.command(
        Deploy("web", spec=base.model_copy(update={"cmd": "v2"}), strategy=m.Strategy(min_ready_seconds=1))
    )
    sim.run(100)
    new = sim.latest.to_version
    counts = [next((t.instances for t in r if t.version == new), 0) for r in sim.rollouts]
    assert counts == sorted(counts)  # the new target only grows
    killed_new = [t for t in sim.view.group_tasks("web") if t.group_version == new and t.terminal]
    assert killed_new == []


def test_a_user_update_starts_a_rolling_deployment_and_a_second_deploy_conflicts() -> None:
    from libs.errors import Conflict
    from services.deployer.service_layer.deployer import _needs_deployment
    from services.deployer.service_layer.view import DeployerView

    base = spec(instances=3)
    sim = Sim(base)
    sim.update(base.model_copy(update={"cmd": "v2"}))
    assert not sim.group.settled
    view = DeployerView()
    view.groups = sim.view.groups
    assert _needs_deployment(view, sim.group)
    sim.command(Deploy("web", automatic=True))
    assert sim.latest.to_version == 2 and sim.latest.automatic
    with pytest.raises(Conflict):
        sim.command(Deploy("web", spec=base.model_copy(update={"cmd": "v3"})))
    sim.run(100)
    assert sim.latest.state == "succeeded"
    assert sim.versions_alive() == {2: 3}


def test_supersede_replaces_the_running_deployment_from_the_same_stable_version() -> None:
    base = spec(instances=4)
    sim = Sim(base, start_delay=3)
    sim.command(Deploy("web", spec=base.model_copy(update={"cmd": "v2"})))
    sim.run(3, until=lambda s: False)
    first = sim.latest
    sim.command(Deploy("web", spec=base.model_copy(update={"cmd": "v3"}), supersede=True))
    second = sim.latest
    assert sim.deployments.by_id[first.id].state == "superseded"
    assert second.from_version == first.from_version == 1
    sim.run(200)
    assert sim.latest.state == "succeeded"
    assert sim.versions_alive() == {sim.latest.to_version: 4}
    assert sim.group.spec.cmd == "v3"


def test_a_spec_change_made_during_a_deployment_supersedes_it() -> None:
    from services.deployer.service_layer.deployer import _changed_elsewhere

    base = spec(instances=3)
    sim = Sim(base, start_delay=3)
    sim.command(Deploy("web", spec=base.model_copy(update={"cmd": "v2"})))
    sim.run(2, until=lambda s: False)
    d = sim.current
    assert d is not None and not _changed_elsewhere(d, sim.group)
    sim.update(base.model_copy(update={"cmd": "v3"}))
    assert _changed_elsewhere(d, sim.group)
    sim.command(Deploy("web", automatic=True, supersede=True))
    assert sim.deployments.by_id[d.id].state == "superseded"
    sim.run(200)
    assert sim.latest.state == "succeeded" and sim.versions_alive() == {3: 3}


@pytest.mark.parametrize("seed", range(40))
def test_rolling_bounds_hold_for_random_groups_and_start_times(seed: int) -> None:
    import random

    rng = random.Random(seed)
    n = rng.randint(1, 12)
    mhc, moc = rng.choice([0.0, 0.25, 0.5, 0.75, 0.9, 1.0]), rng.choice([0.0, 0.1, 0.25, 0.5, 1.0])
    up = UpgradeStrategy(minimum_health_capacity=mhc, maximum_over_capacity=moc)
    sim = Sim(spec(instances=n, upgrade_strategy=up), start_delay=rng.randint(1, 4))
    sim.command(
        Deploy(
            "web",
            spec=sim.group_spec.model_copy(update={"cmd": "v2"}),
            strategy=m.Strategy(min_ready_seconds=rng.choice([0, 1, 3])),
        )
    )
    min_ready, max_running = sim.bounds()
    sim.run(500)
    assert sim.latest.state == "succeeded", (n, mhc, moc, sim.latest)
    assert sim.min_ready_seen is not None and sim.min_ready_seen >= min_ready, (n, mhc, moc)
    assert sim.max_running_seen <= max_running, (n, mhc, moc)
    assert sim.versions_alive() == {2: n}


@pytest.mark.parametrize("seed", range(20))
def test_a_crashing_build_rolls_back_by_itself_never_below_the_bound(seed: int) -> None:
    import random

    rng = random.Random(seed)
    n = rng.randint(1, 10)
    mhc, moc = rng.choice([0.0, 0.5, 0.75, 1.0]), rng.choice([0.0, 0.25, 1.0])
    up = UpgradeStrategy(minimum_health_capacity=mhc, maximum_over_capacity=moc)
    sim = Sim(spec(instances=n, upgrade_strategy=up), start_delay=rng.randint(1, 3), crash=lambda v: v == 2)
    sim.command(
        Deploy(
            "web",
            spec=sim.group_spec.model_copy(update={"cmd": "v2"}),
            strategy=m.Strategy(progress_deadline_seconds=20),
        )
    )
    min_ready, _ = sim.bounds()
    sim.run(500)
    assert sim.latest.state == "rolled_back"
    assert sim.min_ready_any is not None and sim.min_ready_any >= min_ready
    # the stable version's own target, or (when it had been stopped to nothing, mhc 0) its spec
    # restored under the version the rollback gave it: exactly the stable spec either way
    back = sim.latest.rolled_back_to
    assert back in (1, sim.group.version)
    assert sim.versions_alive() == {back: n} and sim.group.settled and sim.group.spec.cmd == "v1"
    assert same_run(sim.group.spec_of(back), sim.specs[1])
