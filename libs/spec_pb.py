"""Conversion between the group spec model and its wire form ``bay.v1.GroupSpec``.

Field by field rather than through ``json_format``: replaying history and listing groups convert
specs all the time, and the JSON detour cost ~150 us a spec. ``test_spec`` checks that a round trip
is lossless, so a field added to one side and not here fails there.
"""

from __future__ import annotations

from typing import Any

from bay.v1 import group_pb2

from libs.spec import TRUSTED, GroupSpec, validate_spec


def spec_to_pb(spec: GroupSpec) -> group_pb2.GroupSpec:
    r, u, b = spec.resources, spec.upgrade_strategy, spec.backoff
    out = group_pb2.GroupSpec(
        name=spec.name,
        service=spec.service or "",
        cluster=spec.cluster,
        cmd=spec.cmd or "",
        image=spec.image or "",
        build=spec.build or "",
        args=spec.args,
        env=spec.env,
        instances=spec.instances,
        resources=group_pb2.Resources(cpus=r.cpus, mem=r.mem, disk=r.disk),
        ports=[
            group_pb2.PortSpec(
                name=p.name, container_port=p.container_port, host_port=p.host_port, protocol=p.protocol
            )
            for p in spec.ports
        ],
        labels=spec.labels,
        constraints=[group_pb2.Constraint(field=c.field, op=c.op, value=c.value) for c in spec.constraints],
        upgrade_strategy=group_pb2.UpgradeStrategy(
            minimum_health_capacity=u.minimum_health_capacity, maximum_over_capacity=u.maximum_over_capacity
        ),
        backoff=group_pb2.Backoff(
            backoff_seconds=b.backoff_seconds,
            backoff_factor=b.backoff_factor,
            max_launch_delay_seconds=b.max_launch_delay_seconds,
        ),
    )
    if spec.health_check is not None:
        h = spec.health_check
        out.health_check.CopyFrom(
            group_pb2.HealthCheck(
                protocol=h.protocol,
                path=h.path,
                port_name=h.port_name,
                command=h.command,
                grace_period_seconds=h.grace_period_seconds,
                interval_seconds=h.interval_seconds,
                timeout_seconds=h.timeout_seconds,
                max_consecutive_failures=h.max_consecutive_failures,
            )
        )
    return out


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    """Proto3 zero values mean "not given": leave them out so the model's defaults apply."""
    if value:
        d[key] = value


def spec_dict_from_pb(m: group_pb2.GroupSpec) -> dict[str, Any]:
    """Plain data for validation (absent and zero fields are left to the model's defaults)."""
    d: dict[str, Any] = {"name": m.name}
    for key in ("service", "cluster", "cmd", "image", "build"):
        _put(d, key, getattr(m, key))
    _put(d, "args", list(m.args))
    _put(d, "env", dict(m.env))
    _put(d, "labels", dict(m.labels))
    if m.HasField("instances"):
        d["instances"] = m.instances
    if m.HasField("resources"):
        res: dict[str, Any] = {}
        for key in ("cpus", "mem", "disk"):
            _put(res, key, getattr(m.resources, key))
        d["resources"] = res
    if m.ports:
        ports = []
        for p in m.ports:
            port: dict[str, Any] = {"name": p.name}
            for key in ("container_port", "host_port", "protocol"):
                _put(port, key, getattr(p, key))
            ports.append(port)
        d["ports"] = ports
    if m.constraints:
        d["constraints"] = [{"field": c.field, "op": c.op, "value": c.value} for c in m.constraints]
    if m.HasField("health_check"):
        h = m.health_check
        check: dict[str, Any] = {"protocol": h.protocol}
        for key in (
            "path",
            "port_name",
            "command",
            "interval_seconds",
            "timeout_seconds",
            "max_consecutive_failures",
        ):
            _put(check, key, getattr(h, key))
        if h.HasField("grace_period_seconds"):
            check["grace_period_seconds"] = h.grace_period_seconds
        d["health_check"] = check
    if m.HasField("upgrade_strategy"):
        u = m.upgrade_strategy
        d["upgrade_strategy"] = {
            f: getattr(u, f) for f in ("minimum_health_capacity", "maximum_over_capacity") if u.HasField(f)
        }
    if m.HasField("backoff"):
        backoff: dict[str, Any] = {}
        for f in ("backoff_seconds", "backoff_factor", "max_launch_delay_seconds"):
            _put(backoff, f, getattr(m.backoff, f))
        d["backoff"] = backoff
    return d


def spec_from_pb(msg: group_pb2.GroupSpec, prefix: str = "spec") -> GroupSpec:
    """Validated model from the wire (ValidationFailed names fields as ``spec.<path>``)."""
    return validate_spec(spec_dict_from_pb(msg), prefix)


def trusted_spec_from_pb(msg: group_pb2.GroupSpec) -> GroupSpec:
    """For specs read back from the log: they were validated before they were appended."""
    return GroupSpec.model_validate(spec_dict_from_pb(msg), context=TRUSTED)
