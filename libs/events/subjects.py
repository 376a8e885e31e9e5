"""The subject layout of the event log, in one place.

One subject per aggregate under ``bay.ev``:

| aggregate | subject | writer |
| --- | --- | --- |
| group | ``bay.ev.group.<name>`` | registry |
| cluster | ``bay.ev.cluster.<name>`` | registry |
| build | ``bay.ev.build.<id>`` | registry |
| task | ``bay.ev.task.<cluster>.<task id>`` | the cluster's scheduler |
| sched | ``bay.ev.sched.<cluster>.<group>`` (placement failures, launch backoff) | the cluster's scheduler |
| framework | ``bay.ev.framework.<cluster>`` (the Mesos framework id) | the cluster's scheduler |
| deployment | ``bay.ev.deploy.<group>`` (the group's deployments, one at a time) | the deployer |
| autoscale | ``bay.ev.autoscale.<group>`` (policy, decisions, window snapshots) | the autoscaler |

Names are DNS labels and task ids ``<group>.<uuid>``, so a subject's tokens never need escaping.
"""

from __future__ import annotations

ROOT = "bay.ev"
ALL = f"{ROOT}.>"

GROUP = "group"
CLUSTER = "cluster"
BUILD = "build"
TASK = "task"
SCHED = "sched"
FRAMEWORK = "framework"
DEPLOY = "deploy"
AUTOSCALE = "autoscale"

GROUP_PREFIX = f"{ROOT}.{GROUP}."
CLUSTER_PREFIX = f"{ROOT}.{CLUSTER}."
BUILD_PREFIX = f"{ROOT}.{BUILD}."
TASK_PREFIX = f"{ROOT}.{TASK}."
SCHED_PREFIX = f"{ROOT}.{SCHED}."
FRAMEWORK_PREFIX = f"{ROOT}.{FRAMEWORK}."
DEPLOY_PREFIX = f"{ROOT}.{DEPLOY}."
AUTOSCALE_PREFIX = f"{ROOT}.{AUTOSCALE}."


def subject_for(aggregate_type: str, aggregate_id: str) -> str:
    """A registry aggregate's subject: ``bay.ev.<type>.<id>``."""
    return f"{ROOT}.{aggregate_type}.{aggregate_id}"


def group(name: str) -> str:
    return GROUP_PREFIX + name


def task(cluster_name: str, task_id: str) -> str:
    return f"{TASK_PREFIX}{cluster_name}.{task_id}"


def sched(cluster_name: str, group_name: str) -> str:
    return f"{SCHED_PREFIX}{cluster_name}.{group_name}"


def framework(cluster_name: str) -> str:
    return FRAMEWORK_PREFIX + cluster_name


def deploy(group_name: str) -> str:
    return DEPLOY_PREFIX + group_name


def autoscale(group_name: str) -> str:
    return AUTOSCALE_PREFIX + group_name


def group_tasks(group_name: str) -> str:
    """Every task subject of one group, in every cluster (task ids are ``<group>.<uuid>``)."""
    return f"{TASK_PREFIX}*.{group_name}.*"


def of_group(group_name: str) -> tuple[str, ...]:
    """The subjects a group's own history is on: its events, its tasks', its deployments'."""
    return (group(group_name), group_tasks(group_name), deploy(group_name))


def task_prefix(cluster_name: str) -> str:
    """Every task subject of one cluster starts with this."""
    return f"{TASK_PREFIX}{cluster_name}."


def sched_prefix(cluster_name: str) -> str:
    return f"{SCHED_PREFIX}{cluster_name}."


# ---- samples: plain NATS, not events (not in the stream) ----

USAGE_ROOT = "bay.usage"
METRIC_ROOT = "bay.metric"


def usage(cluster_name: str, group_name: str) -> str:
    """Task usage samples (``bay.v1.UsageBatch``) a cluster's scheduler publishes for a group."""
    return f"{USAGE_ROOT}.{cluster_name}.{group_name}"


def metric(group_name: str, metric_name: str) -> str:
    """A custom metric's samples for a group: ``bay.metric.<group>.<name>``."""
    return f"{METRIC_ROOT}.{group_name}.{metric_name}"


def matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: ``*`` one token, ``>`` the rest."""
    p = pattern.split(".")
    s = subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)
