"""The group spec: what to run, how many, where, how to check it (modelled on Marathon's app).

This is the contract humans write (YAML/JSON) and the registry validates; the wire form is
``bay.v1.GroupSpec`` (conversion in :mod:`libs.spec_pb`). ``validate_spec`` turns every problem
into a :class:`~libs.errors.FieldViolation` naming its field.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from libs.errors import FieldViolation, ValidationFailed

#: the most instances a group may have
MAX_INSTANCES = 100_000
#: the highest spec version (``uint32`` on the wire)
MAX_VERSION = 2**32 - 1

#: validation context of specs read back from the log: validated when they were appended, they are
#: taken as they are (a log from before non-finite numbers were refused may hold ``disk: inf``)
TRUSTED = {"trusted": True}


def _finite(value: float, info: ValidationInfo) -> float:
    if not math.isfinite(value) and not (info.context or {}).get("trusted"):
        raise ValueError("must be a finite number")
    return value


#: a number of the spec: an int or a float, never a string or a bool, never NaN or infinite
Number = Annotated[float, AfterValidator(_finite)]

DNS_LABEL_RE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_RE)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256)]
LabelKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.\-/]{0,127})$")]

CONSTRAINT_OPS = ("==", "!=", "LIKE", "UNLIKE", "UNIQUE", "MAX_PER", "GROUP_BY")


class _Model(BaseModel):
    # strict: "5" and true are not numbers, 2.0 is not an int (JSON, YAML and the wire alike)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Resources(_Model):
    cpus: Number = Field(0.1, gt=0, le=1024)
    mem: Number = Field(128.0, gt=0, le=4 * 1024 * 1024, description="MiB")
    disk: Number = Field(0.0, ge=0, description="MiB")


class PortSpec(_Model):
    name: DnsLabel
    container_port: int = Field(0, ge=0, le=65535)
    host_port: int = Field(0, ge=0, le=65535, description="0: assigned from the cluster's range")
    protocol: Literal["tcp", "udp"] = "tcp"


class Constraint(_Model):
    field: str = Field(min_length=1, max_length=128)
    op: Literal["==", "!=", "LIKE", "UNLIKE", "UNIQUE", "MAX_PER", "GROUP_BY"]
    value: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        # Marathon's form: ["zone", "GROUP_BY", "3"]
        if isinstance(data, list | tuple):
            if len(data) not in (2, 3):
                raise ValueError("a constraint is [field, op] or [field, op, value]")
            return {"field": data[0], "op": data[1], "value": data[2] if len(data) == 3 else ""}
        return data

    @model_validator(mode="after")
    def _value_fits_op(self) -> Constraint:
        if self.op in ("==", "!=") and not self.value:
            raise ValueError(f"{self.op} needs a value")
        if self.op == "UNIQUE" and self.value:
            raise ValueError("UNIQUE takes no value")
        if self.op in ("LIKE", "UNLIKE"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"value is not a regular expression: {exc}") from exc
        if self.op == "MAX_PER" or (self.op == "GROUP_BY" and self.value):
            if not self.value.isdigit() or int(self.value) < 1:
                raise ValueError(f"{self.op} needs a positive integer value")
        return self


class HealthCheck(_Model):
    protocol: Literal["http", "tcp", "command"]
    path: str = "/"
    port_name: str = ""
    command: str = ""
    grace_period_seconds: Number = Field(30.0, ge=0, le=3600)
    interval_seconds: Number = Field(5.0, gt=0, le=3600)
    timeout_seconds: Number = Field(2.0, gt=0, le=600)
    max_consecutive_failures: int = Field(3, ge=1, le=100)

    @model_validator(mode="after")
    def _fields_fit_protocol(self) -> HealthCheck:
        if self.protocol == "http" and not self.path.startswith("/"):
            raise ValueError("path must start with /")
        if self.protocol == "command" and not self.command:
            raise ValueError("a command check needs `command`")
        if self.timeout_seconds > self.interval_seconds:
            raise ValueError("timeout_seconds must not exceed interval_seconds")
        return self


class UpgradeStrategy(_Model):
    minimum_health_capacity: Number = Field(1.0, ge=0, le=1)
    maximum_over_capacity: Number = Field(1.0, ge=0, le=1)


class Backoff(_Model):
    backoff_seconds: Number = Field(1.0, gt=0, le=3600)
    backoff_factor: Number = Field(1.15, ge=1, le=10)
    max_launch_delay_seconds: Number = Field(300.0, gt=0, le=86400)


class GroupSpec(_Model):
    name: DnsLabel
    service: DnsLabel | None = Field(None, description="DNS service name; defaults to the name")
    cluster: DnsLabel = "local"
    cmd: str | None = Field(None, max_length=65536)
    image: str | None = Field(None, max_length=1024)
    build: str | None = Field(None, max_length=256, description="a registered build's id")
    args: list[str] = Field(default_factory=list, max_length=1024)
    env: dict[EnvName, str] = Field(default_factory=dict)
    instances: int = Field(1, ge=0, le=MAX_INSTANCES)
    resources: Resources = Field(default_factory=Resources)
    ports: list[PortSpec] = Field(default_factory=list, max_length=64)
    labels: dict[LabelKey, str] = Field(default_factory=dict)
    constraints: list[Constraint] = Field(default_factory=list, max_length=64)
    health_check: HealthCheck | None = None
    upgrade_strategy: UpgradeStrategy = Field(default_factory=UpgradeStrategy)
    backoff: Backoff = Field(default_factory=Backoff)

    @model_validator(mode="after")
    def _whole_spec(self) -> GroupSpec:
        if not (self.cmd or self.image or self.build):
            raise ValueError("one of cmd, image or build is required")
        if self.image and self.build:
            raise ValueError("give image or build, not both")
        names = [p.name for p in self.ports]
        if len(set(names)) != len(names):
            raise ValueError("port names must be unique")
        if self.health_check and self.health_check.protocol in ("http", "tcp"):
            if not self.ports:
                raise ValueError(f"a {self.health_check.protocol} health check needs a port")
            if self.health_check.port_name and self.health_check.port_name not in names:
                raise ValueError(
                    f"health_check.port_name {self.health_check.port_name!r} is not a declared port"
                )
        return self

    @property
    def service_name(self) -> str:
        return self.service or self.name


def violations_from(exc: ValidationError, prefix: str = "") -> list[FieldViolation]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        path = ".".join([prefix, *loc] if prefix else loc) or (prefix or "spec")
        msg = err["msg"].removeprefix("Value error, ")
        out.append(FieldViolation(path, msg))
    return out


def validate_spec(data: Any, prefix: str = "") -> GroupSpec:
    """A GroupSpec from plain data, or ValidationFailed naming every bad field."""
    try:
        return GroupSpec.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(violations_from(exc, prefix)) from None
