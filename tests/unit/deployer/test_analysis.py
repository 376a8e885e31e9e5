"""Analysis verdicts and the samples it reads."""

from __future__ import annotations

from bay.v1 import scheduler_pb2

from libs.events import model as m
from services.deployer.adapters.samples import Samples
from services.deployer.domain.analysis import evaluate
from services.deployer.domain.deployment import Deploy
from tests.unit.deployer.sim import Sim, spec

A = m.Analysis(10.0, (m.Threshold("cpu", "<", 0.8), m.Threshold("ready_fraction", ">=", 1.0)))


def test_no_data_waits_until_the_end_then_fails_unless_told_to_pass() -> None:
    values = {"ready_fraction": 1.0, "cpu": None}
    assert evaluate(A, values, 100.0, 105.0).outcome == "wait"
    assert evaluate(A, values, 100.0, 110.0).outcome == "fail"
    lenient = m.Analysis(10.0, A.thresholds, "pass")
    assert evaluate(lenient, values, 100.0, 110.0).outcome == "pass"


def test_a_bad_value_fails_at_once_and_good_ones_pass_at_the_end() -> None:
    assert evaluate(A, {"ready_fraction": 1.0, "cpu": 0.95}, 100.0, 101.0).outcome == "fail"
    assert evaluate(A, {"ready_fraction": 1.0, "cpu": 0.2}, 100.0, 101.0).outcome == "wait"
    assert evaluate(A, {"ready_fraction": 1.0, "cpu": 0.2}, 100.0, 110.0).outcome == "pass"
    assert evaluate(m.Analysis(1, (m.Threshold("cpu", "~", 1),)), {"cpu": 0.1}, 0, 0).outcome == "fail"


def test_samples_average_the_new_tasks_since_the_analysis_began() -> None:
    now = [100.0]
    samples = Samples(lambda: now[0])
    batch = scheduler_pb2.UsageBatch(
        cluster="local",
        group="web",
        samples=[
            scheduler_pb2.UsageSample(
                task_id="web.new", cpu_fraction=0.5, cpus_limit=1.0, mem_bytes=50, mem_limit_bytes=100
            ),
            scheduler_pb2.UsageSample(task_id="web.old", cpu_fraction=1.0, cpus_limit=1.0),
        ],
    )
    samples.add_usage(batch)
    new = frozenset({"web.new"})
    assert samples.value("web", "cpu", new, 100.0) == 0.5
    assert samples.value("web", "mem", new, 100.0) == 0.5
    assert samples.value("web", "cpu", new, 101.0) is None  # before the analysis began: not counted
    samples.add_metric("web", "errors", 2.0)
    samples.add_metric("web", "errors", 4.0)
    assert samples.value("web", "custom:errors", new, 0.0) == 3.0
    assert samples.value("web", "custom:latency", new, 0.0) is None


def test_custom_metric_messages() -> None:
    samples = Samples(lambda: 5.0)
    assert samples.add_metric_message("bay.metric.web.rps", b"0.25")
    assert samples.add_metric_message("bay.metric.web.rps", b'{"value": 3, "task": "web.1"}')
    for subject, data in [
        ("bay.metric.web.rps", b"nope"),
        ("bay.metric.web.rps", b'{"v": 1}'),
        ("bay.metric.web.rps", b"true"),
        ("bay.metric.web", b"1"),  # no metric name
        ("bay.usage.local.web", b"1"),
    ]:
        assert not samples.add_metric_message(subject, data), (subject, data)
    assert samples.value("web", "custom:rps", frozenset(), 0.0) == (0.25 + 3) / 2


def test_a_migration_that_makes_no_progress_goes_back_to_its_source_cluster() -> None:
    sim = Sim(spec(instances=2), crash=lambda v: v == 2)
    sim.command(Deploy("web", cluster="sim", strategy=m.Strategy(progress_deadline_seconds=15.0)))
    sim.run(200)
    d = sim.latest
    assert d.state == "rolled_back" and "deadline" in d.reason
    assert sim.group.spec.cluster == "local" and sim.group.settled
    assert {t.spec.cluster for t in sim.group.targets} == {"local"}
    assert sim.versions_alive() == {1: 2}
