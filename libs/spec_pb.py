"""Conversion between the group spec model and its wire form ``bay.v1.GroupSpec``."""

from __future__ import annotations

from typing import Any

from bay.v1 import group_pb2
from google.protobuf import json_format

from libs.spec import GroupSpec, validate_spec


def spec_to_pb(spec: GroupSpec) -> group_pb2.GroupSpec:
    data = spec.model_dump(exclude_none=True)
    return json_format.ParseDict(data, group_pb2.GroupSpec(), ignore_unknown_fields=False)


def spec_dict_from_pb(msg: group_pb2.GroupSpec) -> dict[str, Any]:
    """Plain data for validation; proto3 zero values are absent, so model defaults apply."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def spec_from_pb(msg: group_pb2.GroupSpec, prefix: str = "spec") -> GroupSpec:
    """Validated model from the wire (ValidationFailed names fields as ``spec.<path>``)."""
    return validate_spec(spec_dict_from_pb(msg), prefix)


def trusted_spec_from_pb(msg: group_pb2.GroupSpec) -> GroupSpec:
    """For specs read back from the log: they were validated before they were appended."""
    return GroupSpec.model_validate(spec_dict_from_pb(msg))
