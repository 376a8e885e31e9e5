"""Who may do what on NATS: one user per Bay service, read-only users for audit systems, and the
set-up. Pure: subjects in, nats-server configuration text out (no I/O).

- ``registry`` publishes ``bay.ev.group.>``, ``bay.ev.cluster.>``, ``bay.ev.build.>``; reads the stream.
- ``scheduler-<cluster>`` publishes ``bay.ev.task.<cluster>.>``, ``bay.ev.sched.<cluster>.>``,
  ``bay.ev.framework.<cluster>``, ``bay.usage.<cluster>.>`` and its lease key; reads the stream and
  the lease bucket.
- ``deployer`` publishes ``bay.ev.deploy.>``; reads the stream and the usage and custom metric
  samples (``bay.usage.>``, ``bay.metric.>``) for its analyses.
- ``autoscaler`` publishes ``bay.ev.autoscale.>``; reads the stream (its log, the platform's), a
  backlog metric's consumer info on any stream, with an ephemeral consumer there to wake a group at
  zero, and the usage and custom metric samples.
- ``dns``, ``gateway``: no event; read the stream; the gateway also the usage samples
  (``bay.usage.>``) for the group page's charts.
- ``audit`` (Bay's audit table): ``bay.audit.progress``; reads the stream with its durable consumer.
- ``audit/<name>`` (systems outside Bay): no event; read the stream with consumers of their own.
- ``metrics/<group>`` (a group's custom metric publisher, ``bay nats metrics-credential``): publishes
  ``bay.metric.<group>.>`` and nothing else; subscribes to nothing, not even an inbox (nats-py needs
  one for requests alone).
- ``setup``: every right (it creates the stream and the lease bucket).

Reading the stream is JetStream's API for consumers (create, info, delete, fetch), stream info and
direct/message gets, acks and flow-control replies, and replies on inboxes. Managing any stream
(create, update, delete, purge, message delete, snapshot, restore) is denied to every user but the
set-up, on top of not being allowed: a deny wins over any allow nats-server is given later.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from libs.events import subjects

#: a name that may stand in a subject token or a file name: a DNS label, as group names are (no
#: dot, no wildcard, so it cannot reach another group's subjects)
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
NAME_RULE = "a DNS label: lowercase letters, digits and '-', at most 63, a letter or digit at each end"

#: the JetStream API of stream management: only the set-up may use it
_STREAM_OPS = ("CREATE", "UPDATE", "DELETE", "PURGE", "MSG.DELETE", "SNAPSHOT", "RESTORE", "PEER.REMOVE")
MANAGE_STREAMS = (
    *(f"$JS.API.STREAM.{op}.>" for op in _STREAM_OPS),
    "$JS.API.META.>",
    "$JS.API.SERVER.>",
    "$JS.API.ACCOUNT.>",
)

#: plain NATS replies: nats-py's inboxes, the event log's pipelined acks, the bulk reader's consumer
REPLIES = ("_INBOX.>", "_BAY_ACK.>", "_BAY_REPLAY.>")

AUDIT_PROGRESS = "bay.audit.progress"  # services/gateway/audit/writer.py
LEASE_KEY_PREFIX = "scheduler."  # libs/lease.py keys: scheduler.<cluster>


def usage_subjects(cluster: str) -> str:
    """services/scheduler/adapters/usage.py: ``bay.usage.<cluster>.<group>``."""
    return f"bay.usage.{cluster}.>"


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    deny_publish: tuple[str, ...] = MANAGE_STREAMS


def read_stream(stream: str) -> tuple[str, ...]:
    """What reading ``stream`` publishes: JetStream API requests, acks, flow-control answers."""
    return (
        "$JS.API.INFO",
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.*",
        f"$JS.API.CONSUMER.INFO.{stream}.*",
        f"$JS.API.CONSUMER.DELETE.{stream}.*",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*",
        f"$JS.API.CONSUMER.NAMES.{stream}",
        f"$JS.API.CONSUMER.LIST.{stream}",
        f"$JS.ACK.{stream}.>",
        "$JS.FC.>",
    )


def read_kv(bucket_token: str = "*") -> tuple[str, ...]:
    """Reading a KV bucket (``*``: any; a bucket is the stream ``KV_<bucket>``, and a wildcard
    cannot stand for part of a token)."""
    return (
        f"$JS.API.STREAM.INFO.{'*' if bucket_token == '*' else 'KV_' + bucket_token}",
        "$JS.API.STREAM.MSG.GET.*",
        "$JS.API.DIRECT.GET.*.$KV.>",
    )


def registry(stream: str) -> Permissions:
    own = (f"{subjects.GROUP_PREFIX}>", f"{subjects.CLUSTER_PREFIX}>", f"{subjects.BUILD_PREFIX}>")
    return Permissions(own + read_stream(stream), REPLIES)


def scheduler(stream: str, cluster: str) -> Permissions:
    own = (
        f"{subjects.task_prefix(cluster)}>",
        f"{subjects.sched_prefix(cluster)}>",
        subjects.framework(cluster),
        usage_subjects(cluster),
        f"$KV.*.{LEASE_KEY_PREFIX}{cluster}",  # its lease in the lease bucket, no other key
    )
    return Permissions(own + read_stream(stream) + read_kv(), REPLIES)


def deployer(stream: str) -> Permissions:
    samples = (f"{subjects.USAGE_ROOT}.>", f"{subjects.METRIC_ROOT}.>")
    return Permissions((f"{subjects.DEPLOY_PREFIX}>", *read_stream(stream)), REPLIES + samples)


def autoscaler(stream: str) -> Permissions:
    samples = (f"{subjects.USAGE_ROOT}.>", f"{subjects.METRIC_ROOT}.>")
    # a backlog metric reads another stream's consumer (info), and a group at zero is woken by an
    # ephemeral consumer of the autoscaler's own on that stream (sources/backlog.StreamWake: an
    # unnamed create, a delete). nats-server's subjects cannot tell that consumer from any other:
    # these rights create, update and delete any consumer of any stream, never manage a stream.
    backlog = (
        "$JS.API.STREAM.INFO.*",
        "$JS.API.CONSUMER.INFO.*.*",
        "$JS.API.CONSUMER.CREATE.*",
        "$JS.API.CONSUMER.CREATE.*.>",
        "$JS.API.CONSUMER.DELETE.*.*",
    )
    own = (f"{subjects.AUTOSCALE_PREFIX}>", *read_stream(stream), *backlog)
    return Permissions(own, REPLIES + samples)


def reader(stream: str) -> Permissions:
    """dns: fold the stream, publish nothing."""
    return Permissions(read_stream(stream), REPLIES)


def gateway(stream: str) -> Permissions:
    """gateway: fold the stream, publish nothing; read the usage samples (the group page's charts)."""
    return Permissions(read_stream(stream), (*REPLIES, f"{subjects.USAGE_ROOT}.>"))


def audit_writer(stream: str) -> Permissions:
    """Bay's audit table: a durable consumer, and its progress on plain NATS."""
    return Permissions((AUDIT_PROGRESS, *read_stream(stream)), REPLIES)


def audit_consumer(stream: str) -> Permissions:
    """An audit system outside Bay: its own consumers on the stream, nothing published."""
    return Permissions(("$JS.API.STREAM.NAMES", *read_stream(stream)), REPLIES)


def metric_subjects(group: str) -> str:
    """Every custom metric subject of ``group``: ``bay.metric.<group>.>``."""
    return f"{subjects.METRIC_ROOT}.{group}.>"


def metric_publisher(group: str) -> Permissions:
    """A publisher of ``group``'s custom metrics: ``bay.metric.<group>.>`` only (stream management
    denied, as every user's). ``group`` must be a group name (:data:`NAME`): anything else, which
    could hold a dot or a wildcard and reach another group's subjects, is a ValueError naming it."""
    if not NAME.match(group):
        raise ValueError(f"group name {group!r} is not {NAME_RULE}")
    return Permissions(publish=(metric_subjects(group),), subscribe=())


SERVICE_ROLES = ("registry", "deployer", "autoscaler", "dns", "gateway", "audit")


def for_service(role: str, stream: str) -> Permissions | None:
    """``registry``, ``dns``, ``gateway``, ``audit``, ``scheduler-<cluster>``; ``setup``: None (all)."""
    if role == "setup":
        return None
    if role.startswith("scheduler-") and len(role) > len("scheduler-"):
        return scheduler(stream, role.removeprefix("scheduler-"))
    if role == "registry":
        return registry(stream)
    if role == "deployer":
        return deployer(stream)
    if role == "autoscaler":
        return autoscaler(stream)
    if role == "dns":
        return reader(stream)
    if role == "gateway":
        return gateway(stream)
    if role == "audit":
        return audit_writer(stream)
    raise ValueError(f"unknown NATS user {role!r}: {', '.join(SERVICE_ROLES)}, scheduler-<cluster> or setup")


@dataclass(frozen=True)
class NatsUser:
    name: str  # written as a comment: nats-server logs an nkey user by its public key
    nkey: str  # the public key (U...); the seed stays with the user
    permissions: Permissions | None  # None: every right (the set-up)


def _subjects(items: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{s}"' for s in items) + "]"


#: a direction a user has no right in: nats-server reads an empty ``allow`` list as no limit at all
NOTHING = 'deny: [">"]'


def authorization_block(users: Sequence[NatsUser]) -> str:
    """nats-server configuration: ``authorization { users [...] }``."""
    lines = ["authorization {", "  users = ["]
    for u in users:
        lines.append(f"    # {u.name}")
        if u.permissions is None:
            lines.append(f"    {{ nkey: {u.nkey} }}")
            continue
        p = u.permissions
        publish = (
            f"allow: {_subjects(p.publish)}, deny: {_subjects(p.deny_publish)}" if p.publish else NOTHING
        )
        subscribe = f"allow: {_subjects(p.subscribe)}" if p.subscribe else NOTHING
        lines += [
            f"    {{ nkey: {u.nkey}, permissions: {{",
            f"      publish: {{ {publish} }}",
            f"      subscribe: {{ {subscribe} }}",
            "    } }",
        ]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"
