"""What a custom metric publisher of one group may do on NATS: publish ``bay.metric.<group>.>``,
nothing else. Pure (a :class:`libs.natsperms.Permissions`, as Bay's other users have).

A publisher only publishes, so it subscribes to nothing, not even an inbox (nats-py needs one
for requests alone): ``libs.natsperms.authorization_block`` writes an empty list as a deny of
everything (nats-server reads an empty ``allow`` as "no restriction"); the publish side denies the
stream management API as every user's does.

Minting one (``libs/natsusers.py`` does not yet; see the report for what it would take): a seed
file per group, ``metrics/<group>.nk``, its public key written into the authorization block with
:func:`metric_publisher`'s permissions, and a SIGHUP to nats-server.
"""

from __future__ import annotations

from libs.events import subjects
from libs.natsperms import MANAGE_STREAMS, Permissions
from libs.natsusers import NAME


def metric_subjects(group: str) -> str:
    """Every custom metric subject of ``group``: ``bay.metric.<group>.>``."""
    return f"{subjects.METRIC_ROOT}.{group}.>"


def metric_publisher(group: str) -> Permissions:
    """The rights of a publisher of ``group``'s custom metrics. ``group`` must be a group name (a
    DNS label), so that it cannot hold a wildcard or a dot and reach another group's subjects."""
    if not NAME.match(group):
        raise ValueError(f"group name {group!r}: lowercase letters, digits and '-'")
    return Permissions(publish=(metric_subjects(group),), subscribe=(), deny_publish=MANAGE_STREAMS)
