"""Group spec validation: every bad field is named."""

from __future__ import annotations

from typing import Any

import pytest

from libs.errors import ValidationFailed
from libs.spec import validate_spec
from libs.spec_pb import spec_from_pb, spec_to_pb


def fields_of(data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationFailed) as info:
        validate_spec(data)
    return {v.field for v in info.value.violations}


def test_minimal_spec_gets_defaults() -> None:
    s = validate_spec({"name": "web", "cmd": "run"})
    assert (s.instances, s.cluster, s.service_name, s.resources.cpus) == (1, "local", "web", 0.1)
    assert (s.backoff.backoff_seconds, s.backoff.backoff_factor) == (1.0, 1.15)


def test_every_bad_field_is_named() -> None:
    bad = {
        "name": "Web_1",
        "cmd": "run",
        "instances": -2,
        "resources": {"cpus": 0},
        "ports": [{"name": "HTTP"}],
        "env": {"1BAD": "x"},
        "unknown": True,
    }
    assert fields_of(bad) == {
        "name",
        "instances",
        "resources.cpus",
        "ports.0.name",
        "env.1BAD.[key]",
        "unknown",
    }


@pytest.mark.parametrize("name", ["", "-web", "web-", "a" * 64, "we.b", "WEB", "wéb"])
def test_names_must_be_dns_labels(name: str) -> None:
    assert "name" in fields_of({"name": name, "cmd": "run"})


def test_need_something_to_run_and_not_image_with_build() -> None:
    with pytest.raises(ValidationFailed, match="one of cmd, image or build"):
        validate_spec({"name": "web"})
    with pytest.raises(ValidationFailed, match="not both"):
        validate_spec({"name": "web", "image": "x", "build": "b1"})


@pytest.mark.parametrize(
    ("constraint", "ok"),
    [
        (["hostname", "UNIQUE"], True),
        (["zone", "GROUP_BY", "3"], True),
        (["zone", "GROUP_BY"], True),
        (["zone", "MAX_PER", "2"], True),
        (["rack", "LIKE", "r[0-9]+"], True),
        (["rack", "==", "r1"], True),
        (["rack", "=="], False),
        (["hostname", "UNIQUE", "x"], False),
        (["zone", "MAX_PER", "zero"], False),
        (["rack", "LIKE", "("], False),
        (["rack", "NEAR", "x"], False),
        (["rack"], False),
    ],
)
def test_constraints(constraint: list[str], ok: bool) -> None:
    data = {"name": "web", "cmd": "run", "constraints": [constraint]}
    if ok:
        assert validate_spec(data).constraints[0].field == constraint[0]
    else:
        assert any(f.startswith("constraints.0") for f in fields_of(data))


def test_health_check_must_fit_ports() -> None:
    with pytest.raises(ValidationFailed, match="needs a port"):
        validate_spec({"name": "web", "cmd": "run", "health_check": {"protocol": "http"}})
    with pytest.raises(ValidationFailed, match="not a declared port"):
        validate_spec(
            {
                "name": "web",
                "cmd": "run",
                "ports": [{"name": "http"}],
                "health_check": {"protocol": "tcp", "port_name": "admin"},
            }
        )
    assert "health_check.protocol" in fields_of(
        {"name": "web", "cmd": "run", "health_check": {"protocol": "udp"}}
    )


def test_duplicate_port_names_rejected() -> None:
    with pytest.raises(ValidationFailed, match="unique"):
        validate_spec({"name": "web", "cmd": "run", "ports": [{"name": "a"}, {"name": "a"}]})


def test_round_trip_through_the_wire_form() -> None:
    s = validate_spec(
        {
            "name": "web",
            "image": "nginx:1",
            "instances": 0,
            "ports": [{"name": "http", "container_port": 80}],
            "labels": {"team": "feed"},
            "constraints": [["zone", "GROUP_BY", "2"]],
            "health_check": {"protocol": "http", "path": "/ping"},
        }
    )
    assert spec_from_pb(spec_to_pb(s)) == s


def test_wire_errors_are_prefixed_with_spec() -> None:
    from bay.v1 import group_pb2

    with pytest.raises(ValidationFailed) as info:
        spec_from_pb(group_pb2.GroupSpec(name="Bad", cmd="x"))
    assert [v.field for v in info.value.violations] == ["spec.name"]


def test_explicit_zeros_survive_the_wire() -> None:
    """0 is a real choice for these fields (their defaults are not 0): proto3 must not drop it."""
    s = validate_spec(
        {
            "name": "web",
            "cmd": "run",
            "instances": 0,
            "ports": [{"name": "http"}],
            "health_check": {"protocol": "tcp", "grace_period_seconds": 0},
            "upgrade_strategy": {"minimum_health_capacity": 0, "maximum_over_capacity": 0},
        }
    )
    back = spec_from_pb(spec_to_pb(s))
    assert back.instances == 0
    assert back.health_check is not None and back.health_check.grace_period_seconds == 0
    assert (back.upgrade_strategy.minimum_health_capacity, back.upgrade_strategy.maximum_over_capacity) == (
        0,
        0,
    )
