"""The NATS permissions Bay gives its users (pure: subjects in, configuration text out)."""

from __future__ import annotations

import pytest

from libs import natsperms as p
from libs.events.subjects import matches
from libs.natscreds import NatsCredentials, redact_url


def allowed(perms: p.Permissions, subject: str) -> bool:
    """nats-server's rule: allowed by some allow and denied by no deny."""
    return any(matches(a, subject) for a in perms.publish) and not any(
        matches(d, subject) for d in perms.deny_publish
    )


def test_each_writer_publishes_only_its_own_events() -> None:
    registry = p.registry("BAY_EVENTS")
    local = p.scheduler("BAY_EVENTS", "local")
    assert allowed(registry, "bay.ev.group.web") and allowed(registry, "bay.ev.build.b1")
    assert not allowed(registry, "bay.ev.task.local.web.1")
    assert allowed(local, "bay.ev.task.local.web.1") and allowed(local, "bay.ev.framework.local")
    assert allowed(local, "bay.usage.local.web") and allowed(local, "$KV.bay_leases_10000.scheduler.local")
    for subject in ("bay.ev.group.web", "bay.ev.task.eu.web.1", "bay.ev.framework.eu",
                    "bay.usage.eu.web", "$KV.bay_leases_10000.scheduler.eu"):  # fmt: skip
        assert not allowed(local, subject), subject


@pytest.mark.parametrize("role", ["registry", "scheduler-local", "dns", "gateway", "audit"])
def test_no_service_manages_a_stream_or_writes_what_it_does_not_own(role: str) -> None:
    perms = p.for_service(role, "BAY_EVENTS")
    assert perms is not None
    for op in ("CREATE", "UPDATE", "DELETE", "PURGE"):
        assert not allowed(perms, f"$JS.API.STREAM.{op}.BAY_EVENTS")
    assert allowed(perms, "$JS.API.CONSUMER.CREATE.BAY_EVENTS.x.bay.ev.>")
    assert allowed(perms, "$JS.API.STREAM.INFO.BAY_EVENTS")
    assert allowed(perms, "bay.ev.group.web") == (role == "registry")
    writes = [s for s in ("bay.ev.group.x", "bay.ev.build.x", "bay.ev.task.local.x") if allowed(perms, s)]
    assert (writes == []) == (role in ("dns", "gateway", "audit"))


def test_the_set_up_has_every_right_and_an_audit_consumer_none_to_write() -> None:
    assert p.for_service("setup", "BAY_EVENTS") is None
    audit = p.audit_consumer("BAY_EVENTS")
    assert not any(allowed(audit, s) for s in ("bay.ev.group.web", "bay.audit.progress", "$KV.b.scheduler.x"))
    assert allowed(audit, "$JS.API.CONSUMER.DURABLE.CREATE.BAY_EVENTS.acme")
    with pytest.raises(ValueError, match="unknown NATS user"):
        p.for_service("intruder", "BAY_EVENTS")


def test_the_authorization_block_names_each_user_and_its_rules() -> None:
    text = p.authorization_block(
        [p.NatsUser("registry", "UREG", p.registry("S")), p.NatsUser("setup", "USET", None)]
    )
    assert text.startswith("authorization {") and "# registry" in text and "{ nkey: USET }" in text
    assert '"bay.ev.group.>"' in text and '"$JS.API.STREAM.DELETE.>"' in text


def test_urls_are_logged_without_their_password() -> None:
    url = "nats://bay:s3cret@n1:4222,nats://n2:4222,tls://u:p@n3"
    assert redact_url(url) == "nats://***@n1:4222,nats://n2:4222,tls://***@n3"
    assert "s3cret" not in repr(NatsCredentials("bay", "s3cret"))


def test_one_way_of_credentials_at_a_time() -> None:
    from pathlib import Path

    with pytest.raises(ValueError, match="creds or nkey_seed"):
        NatsCredentials(nkey_seed=Path("a"), creds=Path("b"))
    with pytest.raises(ValueError, match="needs a user"):
        NatsCredentials(password="x")
    assert NatsCredentials("u", "pw").connect_options() == {"user": "u", "password": "pw"}
    assert NatsCredentials(nkey_seed=Path("/s.nk")).connect_options() == {"nkeys_seed": "/s.nk"}


def test_the_autoscaler_reads_any_streams_backlog_and_wakes_on_it_but_manages_no_stream() -> None:
    perms = p.autoscaler("BAY_EVENTS")
    assert allowed(perms, "bay.ev.autoscale.web") and not allowed(perms, "bay.ev.group.web")
    for subject in ("$JS.API.STREAM.INFO.JOBS", "$JS.API.CONSUMER.INFO.JOBS.workers",
                    "$JS.API.CONSUMER.CREATE.JOBS", "$JS.API.CONSUMER.DELETE.JOBS.abc"):  # fmt: skip
        assert allowed(perms, subject), subject  # what read_backlog and StreamWake send
    for op in ("CREATE", "UPDATE", "DELETE", "PURGE", "MSG.DELETE"):
        assert not allowed(perms, f"$JS.API.STREAM.{op}.JOBS"), op


def test_a_metric_publisher_publishes_its_groups_metrics_only() -> None:
    rights = p.metric_publisher("web")
    assert rights.publish == (p.metric_subjects("web"),) == ("bay.metric.web.>",)
    assert allowed(rights, "bay.metric.web.rps") and allowed(rights, "bay.metric.web.queue.depth")
    for subject in ("bay.metric.api.rps", "bay.metric.web", "bay.ev.group.web", "$JS.API.STREAM.CREATE.X"):
        assert not allowed(rights, subject), subject
    assert rights.subscribe == ()
    assert 'subscribe: { deny: [">"] }' in p.authorization_block([p.NatsUser("m", "UKEY", rights)])
    for bad in ("we.b", "*", ">", "web.>", "Web", "", "-web", "a" * 64):
        with pytest.raises(ValueError, match="group name"):
            p.metric_publisher(bad)
