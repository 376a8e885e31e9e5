"""What a custom metric publisher of one group may do on NATS: publish ``bay.metric.<group>.>``,
nothing else. Pure (a :class:`libs.natsperms.Permissions`, as Bay's other users have).

A publisher only publishes, so it subscribes to nothing, not even an inbox (nats-py needs one
for requests alone). nats-server reads an empty ``allow`` list as "no restriction", so the
subscribe side is a deny of everything instead (``deny_subscribe``); the publish side denies the
stream management API as every user's does.

Minting one (``libs/natsusers.py`` does not yet; see the report for what it would take): a seed
file per group, ``metrics/<group>.nk``, its public key written into the authorization block with
:func:`metric_publisher`'s permissions, and a SIGHUP to nats-server.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.events import subjects
from libs.natsperms import MANAGE_STREAMS, Permissions
from libs.natsusers import NAME

DENY_ALL = (">",)


@dataclass(frozen=True)
class PublisherPermissions:
    """The publisher's rights; :attr:`permissions` for what ``libs.natsperms`` has, plus the deny
    of subscriptions (which ``Permissions`` cannot say yet)."""

    permissions: Permissions
    deny_subscribe: tuple[str, ...] = DENY_ALL


def metric_subjects(group: str) -> str:
    """Every custom metric subject of ``group``: ``bay.metric.<group>.>``."""
    return f"{subjects.METRIC_ROOT}.{group}.>"


def metric_publisher(group: str) -> PublisherPermissions:
    """The rights of a publisher of ``group``'s custom metrics. ``group`` must be a group name (a
    DNS label), so that it cannot hold a wildcard or a dot and reach another group's subjects."""
    if not NAME.match(group):
        raise ValueError(f"group name {group!r}: lowercase letters, digits and '-'")
    return PublisherPermissions(
        Permissions(publish=(metric_subjects(group),), subscribe=(), deny_publish=MANAGE_STREAMS)
    )


def authorization_entry(nkey: str, rights: PublisherPermissions, comment: str = "") -> str:
    """The user's entry of a nats-server ``authorization { users [...] }`` block (what
    ``libs.natsperms.authorization_block`` would write for it, with the subscribe deny)."""

    def quoted(items: tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{s}"' for s in items) + "]"

    p = rights.permissions
    lines = [f"    # {comment}"] if comment else []
    lines += [
        f"    {{ nkey: {nkey}, permissions: {{",
        f"      publish: {{ allow: {quoted(p.publish)}, deny: {quoted(p.deny_publish)} }}",
        f"      subscribe: {{ deny: {quoted(rights.deny_subscribe)} }}",
        "    } }",
    ]
    return "\n".join(lines) + "\n"
