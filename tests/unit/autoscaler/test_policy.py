"""Policy validation names the field at fault; clamp keeps any count inside [min, max]."""

from __future__ import annotations

from dataclasses import replace

from services.autoscaler.domain import DownBehaviour, MetricTarget, Policy, UpBehaviour, clamp, validate

CPU = MetricTarget("cpu", 0.6)


def fields(policy: Policy) -> dict[str, str]:
    return dict(validate(policy))


def test_a_sound_policy_has_no_errors() -> None:
    assert validate(Policy(min=1, max=10, metrics=(CPU, MetricTarget("memory", 0.8)))) == []
    backlog = MetricTarget("backlog", 100, name="jobs", activation=5)
    assert validate(Policy(min=0, max=10, metrics=(backlog,))) == []


def test_errors_name_the_field() -> None:
    assert fields(Policy(min=5, max=3, metrics=(CPU,))) == {"max": "must be >= min"}
    assert "min" in fields(Policy(min=-1, max=3, metrics=(CPU,)))
    assert fields(Policy(min=1, max=3, metrics=())) == {"metrics": "needs at least one metric target"}
    bad = Policy(min=1, max=3, metrics=(CPU, MetricTarget("custom", 0, name="rps")))
    assert set(fields(bad)) == {"metrics[1].target"}
    assert set(fields(Policy(min=1, max=3, metrics=(CPU, CPU)))) == {"metrics[1].name"}
    assert set(fields(Policy(min=1, max=3, metrics=(MetricTarget("cpu", 0.5, activation=2),)))) == {
        "metrics[0].activation"
    }
    assert set(fields(Policy(min=1, max=3, metrics=(MetricTarget("cpu", 0.5, per_task=False),)))) == {
        "metrics[0].per_task"
    }
    assert set(fields(Policy(min=1, max=3, metrics=(CPU,), tolerance=1.5))) == {"tolerance"}


def test_min_zero_needs_metrics_that_can_wake_the_group() -> None:
    assert set(fields(Policy(min=0, max=3, metrics=(CPU,)))) == {"min"}
    rps = MetricTarget("custom", 50, name="rps", per_task=False)
    assert validate(Policy(min=0, max=3, metrics=(rps,))) == []


def test_behaviour_fields_are_checked() -> None:
    p = Policy(min=1, max=3, metrics=(CPU,))
    assert set(fields(replace(p, up=UpBehaviour(window_s=10, stable_window_s=5)))) == {"up.stable_window_s"}
    assert set(fields(replace(p, up=UpBehaviour(panic_threshold=1)))) == {"up.panic_threshold"}
    assert set(fields(replace(p, down=DownBehaviour(max_percent=0, min_step=0)))) == {
        "down.max_percent",
        "down.min_step",
    }


def test_clamp_names_the_bound_it_hit() -> None:
    p = Policy(min=2, max=8, metrics=(CPU,))
    assert (clamp(p, 5).count, clamp(p, 5).limit) == (5, "")
    assert (clamp(p, 50).count, clamp(p, 50).limit) == (8, "at max")
    assert (clamp(p, 0).count, clamp(p, 0).limit) == (2, "at min")
