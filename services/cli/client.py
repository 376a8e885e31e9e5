"""The gateway's REST API as the CLI uses it; transport and HTTP errors become :class:`CliError`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from services.cli.errors import CliError, ExitCode, error_from_response

JSON = dict[str, Any]


def _q(name: str) -> str:
    return quote(name, safe="")


def unreachable(url: str, exc: Exception) -> CliError:
    return CliError(
        f"gateway not reachable at {url}: is `bay up` running?",
        ExitCode.UNAVAILABLE,
        f"start it with `bay up`, or point BAY_GATEWAY_URL at a running gateway ({type(exc).__name__})",
    )


class GatewayClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "bay-cli"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        mutation: bool = False,
        timeout: float | None = None,
    ) -> JSON:
        """``timeout``: this call's own, in seconds (else the client's)."""
        headers = {"Idempotency-Key": str(uuid.uuid4())} if mutation else {}
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        limit: Any = timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT
        try:
            resp = self._http.request(method, path, json=json, params=clean, headers=headers, timeout=limit)
        except httpx.TimeoutException as exc:
            raise CliError(
                f"the gateway at {self.base_url} did not answer in time",
                ExitCode.UNAVAILABLE,
                "it may be overloaded or a service behind it is down; try again",
            ) from exc
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from exc
        if resp.is_error:
            raise error_from_response(resp.status_code, resp.content, str(resp.url))
        if not resp.content:
            return {}
        try:
            body = resp.json()
        except ValueError as exc:
            raise CliError(f"the gateway sent something that is not JSON ({resp.status_code})") from exc
        return body if isinstance(body, dict) else {"items": body}

    # ---- groups ----

    def list_groups(self, cluster: str = "", service: str = "") -> list[JSON]:
        return list(
            self.request("GET", "/v1/groups", params={"cluster": cluster, "service": service})["groups"]
        )

    def get_group(self, name: str, *, at: str = "") -> JSON:
        """The group now, or with ``at`` (a sequence or a time) as it was then."""
        return self.request("GET", f"/v1/groups/{_q(name)}", params={"at": at or None})

    def group_exists(self, name: str) -> bool:
        try:
            self.get_group(name)
            return True
        except CliError as exc:
            if exc.code == ExitCode.NOT_FOUND:
                return False
            raise

    def create_group(self, spec: JSON) -> JSON:
        return self.request("POST", "/v1/groups", json=spec, mutation=True)

    def update_group(self, name: str, spec: JSON) -> JSON:
        return self.request("PUT", f"/v1/groups/{_q(name)}", json=spec, mutation=True)

    def scale(self, name: str, instances: int, reason: str = "") -> JSON:
        body: JSON = {"instances": instances}
        if reason:
            body["reason"] = reason
        return self.request("POST", f"/v1/groups/{_q(name)}/scale", json=body, mutation=True)

    def rollback(self, name: str, version: int) -> JSON:
        return self.request(
            "POST", f"/v1/groups/{_q(name)}/rollback", json={"version": version}, mutation=True
        )

    def delete(self, name: str) -> JSON:
        return self.request("DELETE", f"/v1/groups/{_q(name)}", mutation=True)

    def history(self, name: str) -> list[JSON]:
        return list(self.request("GET", f"/v1/groups/{_q(name)}/history")["events"])

    # ---- deployments ----

    def deploy(self, name: str, body: JSON) -> JSON:
        return self.request("POST", f"/v1/groups/{_q(name)}/deploy", json=body, mutation=True)

    def deployments(self, group: str = "", limit: int = 0) -> list[JSON]:
        params = {"group": group, "limit": limit or None}
        return list(self.request("GET", "/v1/deployments", params=params)["deployments"])

    def get_deployment(self, deployment_id: str, *, timeout: float | None = None) -> JSON:
        return self.request("GET", f"/v1/deployments/{_q(deployment_id)}", timeout=timeout)

    def group_deployment(self, name: str, *, timeout: float | None = None) -> JSON:
        """The group's running deployment, else its last one."""
        return self.request("GET", f"/v1/groups/{_q(name)}/deployment", timeout=timeout)

    def control_deployment(
        self, name: str, action: str, *, reason: str = "", all_steps: bool = False
    ) -> JSON:
        """``action``: pause, resume, promote (``all_steps``), abort or undo."""
        params = {"all": "true"} if all_steps else None
        body = {"reason": reason} if reason else None
        path = f"/v1/groups/{_q(name)}/deployment/{action}"
        return self.request("POST", path, json=body, params=params, mutation=True)

    def deployment_stream(self, name: str) -> httpx.Response:
        """The group's deployment as server-sent events (``event: deployment``), open; the caller
        closes it. The gateway ends it when the deployment ends."""
        path = f"/v1/groups/{_q(name)}/deployment/stream"
        return self.open_stream(path, {}, {"Accept": "text/event-stream"})

    # ---- events ----

    # ---- autoscaling ----

    def set_autoscale(self, name: str, policy: JSON) -> JSON:
        return self.request("PUT", f"/v1/groups/{_q(name)}/autoscale", json=policy, mutation=True)

    def get_autoscale(self, name: str) -> JSON:
        return self.request("GET", f"/v1/groups/{_q(name)}/autoscale")

    def remove_autoscale(self, name: str) -> JSON:
        return self.request("DELETE", f"/v1/groups/{_q(name)}/autoscale", mutation=True)

    def autoscale_status(self, name: str) -> JSON:
        return self.request("GET", f"/v1/groups/{_q(name)}/autoscale/status")

    def autoscale_policies(self) -> list[JSON]:
        return list(self.request("GET", "/v1/autoscale")["policies"])

    def events(self, filters: dict[str, Any], after: int = 0, page: int = 500) -> Iterator[JSON]:
        """Every past event matching ``filters`` after sequence ``after``, page by page."""
        cursor: int | None = after
        while cursor is not None:
            body = self.request(
                "GET", "/v1/events", params={**filters, "after": cursor or None, "limit": page}
            )
            yield from body.get("events", [])
            nxt = body.get("next_after")
            cursor = int(nxt) if nxt is not None and nxt != cursor else None

    def event_stream(self, params: dict[str, Any], last_event_id: int | None) -> httpx.Response:
        """An open SSE response (the caller closes it); resumes after ``last_event_id``."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        return self.open_stream("/v1/events/stream", params, headers)

    def open_stream(
        self, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """An open streaming response (no read timeout: a stream may be quiet); the caller closes it."""
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        request = self._http.build_request(
            "GET", path, params=clean, headers=headers, timeout=httpx.Timeout(10.0, read=None)
        )
        try:
            resp = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from exc
        if resp.is_error:
            resp.read()
            resp.close()
            raise error_from_response(resp.status_code, resp.content, str(resp.url))
        return resp

    # ---- tasks ----

    def group_tasks(self, name: str, state: str = "", include_ended: bool = False, at: str = "") -> JSON:
        params = {"state": state, "all": "true" if include_ended else None, "at": at or None}
        return self.request("GET", f"/v1/groups/{_q(name)}/tasks", params=params)

    def group_status(self, name: str, *, timeout: float | None = None) -> JSON:
        return self.request("GET", f"/v1/groups/{_q(name)}/status", timeout=timeout)

    def status_stream(self, name: str) -> httpx.Response:
        """The group's status as server-sent events (``event: status``), open; the caller closes it."""
        return self.open_stream(f"/v1/groups/{_q(name)}/status/stream", {}, {"Accept": "text/event-stream"})

    def get_task(self, task_id: str) -> JSON:
        return self.request("GET", f"/v1/tasks/{_q(task_id)}")

    def task_logs(self, task_id: str, *, stream: str, tail: int, follow: bool) -> httpx.Response:
        params = {"stream": stream, "tail": tail, "follow": "true" if follow else None}
        return self.open_stream(f"/v1/tasks/{_q(task_id)}/logs", params)

    def group_logs(self, group: str, *, stream: str, tail: int, follow: bool) -> httpx.Response:
        params = {"stream": stream, "tail": tail, "follow": "true" if follow else None}
        return self.open_stream(f"/v1/groups/{_q(group)}/logs", params)

    def kill_task(self, task_id: str) -> JSON:
        return self.request("POST", f"/v1/tasks/{_q(task_id)}/kill", mutation=True)

    # ---- DNS ----

    def alerts(self) -> JSON:
        return self.request("GET", "/v1/alerts")

    def dns_lookup(self, service: str, cluster: str = "") -> JSON:
        return self.request("GET", f"/v1/dns/{_q(service)}", params={"cluster": cluster})
