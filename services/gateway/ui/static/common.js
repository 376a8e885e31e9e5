// What every page of Bay's web UI shares: the API client, the live stream, the DOM builder, the
// session, the top bar, time formatting and the health bar.
//
// A page is a static HTML file served under /ui/ that loads, with absolute paths (the CSP allows
// only files of the gateway itself, and no inline script or style):
//   <link rel="stylesheet" href="/ui/static/app.css">
//   <script type="module" src="/ui/static/<page>.js"></script>
// and its module imports what it needs:
//   import { api, stream, el, session, nav, fmtTime, healthBar } from "/ui/static/common.js";
//
// Data is never written as HTML: el() makes text nodes, so a group named "<b>" shows as "<b>".

const CSRF_HEADER = "X-CSRF-Token";

/** An answer of the API that is not 2xx: its status, the message of the error body, and the
 * fields it names (422: {"spec.instances": "must be at most 1000"}). */
export class ApiError extends Error {
  constructor(status, message, fields = {}, hint = "") {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields;
    this.hint = hint;
  }
}

let sessionPromise = null;

/** The logged-in user, cached for the page's life: {user, role, csrf}. Not logged in (or the
 * session expired): the browser goes to the log-in page, which comes back here after. */
export function session() {
  if (sessionPromise === null) {
    sessionPromise = fetch("/ui/session", { credentials: "same-origin", cache: "no-store" }).then(
      async (response) => {
        if (response.status === 401) {
          toLogin();
          throw new ApiError(401, "not logged in");
        }
        if (!response.ok) {
          throw new ApiError(response.status, `the session could not be read (${response.status})`);
        }
        return response.json();
      },
    );
    sessionPromise.catch(() => {
      sessionPromise = null;
    });
  }
  return sessionPromise;
}

/** Whether the logged-in user may change things (operator or admin). */
export function canChange(who) {
  return who !== null && who !== undefined && (who.role === "operator" || who.role === "admin");
}

function toLogin() {
  const here = window.location.pathname + window.location.search;
  window.location.assign(`/ui/login?next=${encodeURIComponent(here)}`);
}

/** Call the REST API with the session cookie: `api("/v1/groups")`,
 * `api("/v1/groups/web/scale", {method: "POST", body: {instances: 3}})`. A body that is not a
 * string goes as JSON. Non-GET calls carry the session's CSRF token. The parsed JSON comes back
 * (text for a non-JSON answer, null for an empty one); an error throws ApiError. */
export async function api(path, { method = "GET", body = undefined, headers = {} } = {}) {
  const sent = { ...headers };
  if (method !== "GET" && method !== "HEAD") {
    sent[CSRF_HEADER] = (await session()).csrf;
  }
  let payload;
  if (body !== undefined) {
    payload = typeof body === "string" ? body : JSON.stringify(body);
    if (!Object.keys(sent).some((h) => h.toLowerCase() === "content-type")) {
      sent["Content-Type"] = "application/json";
    }
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: payload,
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, `the gateway did not answer: ${err.message}`);
  }
  const type = response.headers.get("content-type") || "";
  const text = await response.text();
  let data = text;
  if (type.includes("json") && text) {
    data = JSON.parse(text);
  } else if (!text) {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401) {
      sessionPromise = null;
      toLogin();
    }
    const fields = {};
    for (const v of (data && data.violations) || []) {
      fields[v.field] = v.description;
    }
    const message = (data && data.message) || `${method} ${path}: ${response.status}`;
    throw new ApiError(response.status, message, fields, (data && data.hint) || "");
  }
  return data;
}

/** Follow a server-sent event stream: `const s = stream("/v1/events/stream", ({type, data, id}) =>
 * ...)`; `s.close()` ends it. Every event name reaches onEvent (data parsed as JSON when it is);
 * a dropped stream reconnects after the server's `retry:` delay, sending Last-Event-ID, so it
 * resumes after the last event seen. `options.onState("open" | "closed")` says when it is live.
 *
 * It reads the stream with fetch rather than EventSource: an EventSource calls back only for the
 * event names listened to in advance, and the log's event types are open-ended. */
export function stream(path, onEvent, { onState = () => {} } = {}) {
  let closed = false;
  let controller = null;
  let lastId = null;
  let retryMs = 2000;

  function dispatch(block) {
    let type = "message";
    const lines = [];
    let id = null;
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") lines.push(value);
      else if (field === "id") id = value;
      else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (id !== null) lastId = id;
    if (lines.length === 0) return;
    const raw = lines.join("\n");
    let data = raw;
    try {
      data = JSON.parse(raw);
    } catch (_) {
      // not JSON: handed on as text
    }
    onEvent({ type, data, id });
  }

  async function run() {
    while (!closed) {
      controller = new AbortController();
      const headers = { Accept: "text/event-stream" };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      try {
        const response = await fetch(path, {
          headers,
          credentials: "same-origin",
          cache: "no-store",
          signal: controller.signal,
        });
        if (response.status === 401) {
          toLogin();
          return;
        }
        if (response.ok && response.body) {
          onState("open");
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value.replace(/\r\n?/g, "\n");
            let end = buffer.indexOf("\n\n");
            while (end >= 0) {
              dispatch(buffer.slice(0, end));
              buffer = buffer.slice(end + 2);
              end = buffer.indexOf("\n\n");
            }
          }
        }
      } catch (_) {
        // dropped or aborted: reconnect below unless closed
      }
      if (closed) return;
      onState("closed");
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }

  run();
  return {
    close() {
      closed = true;
      if (controller) controller.abort();
    },
  };
}

/** Build an element: `el("a", {href: "/ui/", class: "nav"}, "Overview")`. Attributes: `class`,
 * `text` (the text content), `dataset` ({key: value}), `on<event>` (a function: a listener),
 * `disabled`/`checked`/`hidden` and the like (booleans), others set as attributes (null or false:
 * left out). Children: nodes, strings (text), arrays of them; null and false are skipped. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** The top bar: Overview, Events, and who is logged in (with Log out). It fills the page's
 * `<header id="nav">` (made at the top of the body if the page has none); `active` is "overview"
 * or "events" (anything else: no link highlighted). Returns the header. */
export function nav(active) {
  let header = document.getElementById("nav");
  if (header === null) {
    header = el("header", { id: "nav" });
    document.body.prepend(header);
  }
  header.className = "topbar";
  const link = (name, href, label) =>
    el("a", { href, class: name === active ? "active" : null, dataset: { nav: name } }, label);
  const who = el("span", { class: "who", id: "who" }, "…");
  header.replaceChildren(
    el("a", { href: "/ui/", class: "brand" }, "Bay"),
    el("nav", {}, link("overview", "/ui/", "Overview"), link("events", "/ui/events", "Events")),
    who,
  );
  session()
    .then((s) => {
      const logout = el("button", { type: "button", class: "link", id: "logout" }, "Log out");
      logout.addEventListener("click", async () => {
        await fetch("/ui/logout", {
          method: "POST",
          headers: { [CSRF_HEADER]: s.csrf },
          credentials: "same-origin",
        });
        window.location.assign("/ui/login");
      });
      who.replaceChildren(
        el("span", { class: "user" }, s.user),
        el("span", { class: `role role-${s.role}`, id: "role" }, s.role),
        logout,
      );
    })
    .catch(() => who.replaceChildren("not logged in"));
  return header;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** A time as `2026-12-04 19:53:39` (UTC, as every time in Bay); takes an RFC 3339 string, a Date
 * or unix seconds. Empty or unparseable: "—" (or the text itself). */
export function fmtTime(iso) {
  if (iso === null || iso === undefined || iso === "" || iso === 0) return "—";
  const d = iso instanceof Date ? iso : new Date(typeof iso === "number" ? iso * 1000 : iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  );
}

/** The parts of a health bar, in the order they are drawn. */
export const HEALTH_PARTS = ["ready", "unhealthy", "starting", "waiting", "over"];
const PART_LABELS = {
  ready: "ready",
  unhealthy: "unhealthy",
  starting: "starting",
  waiting: "waiting for a host",
  over: "over capacity",
};

/** A group's health bar from its counts: `{desired, ready, unhealthy, starting, waiting, over}`
 * (`over`: tasks beyond the desired count, e.g. an old version's still stopping). Each part is
 * a segment as wide as its share of max(desired, the parts' sum); the element carries the counts
 * as data attributes (`data-ready`...) and a title that says them. */
export function healthBar(counts) {
  const c = {};
  for (const part of HEALTH_PARTS) c[part] = Math.max(0, Number(counts[part] || 0));
  const desired = Math.max(0, Number(counts.desired || 0));
  const total = Math.max(
    desired,
    HEALTH_PARTS.reduce((sum, p) => sum + c[p], 0),
  );
  const bar = el("div", {
    class: "health",
    role: "img",
    dataset: { desired: String(desired) },
  });
  const said = [];
  for (const part of HEALTH_PARTS) {
    bar.dataset[part] = String(c[part]);
    if (c[part] === 0 || total === 0) continue;
    said.push(`${c[part]} ${PART_LABELS[part]}`);
    // widths through the CSSOM (allowed by style-src 'self'), not a style attribute
    const segment = el("span", { class: `seg seg-${part}` });
    segment.style.width = `${(100 * c[part]) / total}%`;
    bar.appendChild(segment);
  }
  const title = `${c.ready}/${desired} ready` + (said.length ? ` (${said.join(", ")})` : "");
  bar.setAttribute("title", title);
  bar.setAttribute("aria-label", title);
  return bar;
}
