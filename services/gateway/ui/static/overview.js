// The overview: clusters and hosts with their capacity, every group with its health bar, build,
// latest deployment and firing alerts, and a scale control (operators only). It renders
// GET /v1/overview, then follows /v1/overview/stream: the whole overview on (re)connect, then
// only the groups that changed. An update older than what a row shows is dropped (latest first).
import {
  api,
  ApiError,
  canChange,
  el,
  fmtTime,
  HEALTH_PARTS,
  healthBar,
  nav,
  session,
  stream,
} from "/ui/static/common.js";

const ALERTS_EVERY_MS = 10000;
const rows = new Map(); // group name -> {tr, text, sequence, cells}
let who = null;
let alerts = { configured: false, alerts: [] };
let latestSequence = 0;
// what the browser test reads for the figures (performance.now() milliseconds)
const marks = { firstRender: null, live: null, applied: {} };
window.bayOverview = marks;

const $ = (id) => document.getElementById(id);

/** Replace a node's children, skipping null and false (replaceChildren would write "null"). */
function put(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function showError(message) {
  const box = $("overview-error");
  box.textContent = message;
  box.hidden = !message;
}

function meter(used, free) {
  const total = used + free;
  const fill = el("span");
  fill.style.width = `${total > 0 ? Math.min(100, (100 * used) / total) : 0}%`;
  return el("span", { class: "meter", title: `${used} used of ${total}` }, fill);
}

function renderClusters(clusters) {
  const cards = clusters.map((c) =>
    el(
      "div",
      { class: "card", dataset: { cluster: c.name } },
      el("h3", {}, c.name, " ", el("span", { class: "muted" }, c.backend || "")),
      c.reachable ? null : el("p", { class: "error" }, c.error || "its scheduler does not answer"),
      c.offer_based ? el("p", { class: "muted" }, "free: the outstanding offers") : null,
      el(
        "table",
        {},
        el(
          "thead",
          {},
          el("tr", {}, el("th", {}, "Host"), el("th", {}, "Tasks"), el("th", {}, "CPUs"), el("th", {}, "Mem (MiB)")),
        ),
        el(
          "tbody",
          {},
          c.hosts.map((h) =>
            el(
              "tr",
              { dataset: { host: h.hostname } },
              el("td", {}, h.hostname),
              el("td", { class: "num" }, String(h.tasks)),
              el("td", {}, meter(h.cpus.used, h.cpus.free), ` ${h.cpus.used} used, ${h.cpus.free} free`),
              el("td", {}, meter(h.mem.used, h.mem.free), ` ${h.mem.used} used, ${h.mem.free} free`),
            ),
          ),
        ),
      ),
    ),
  );
  $("clusters").replaceChildren(...cards);
}

function alertsOf(name) {
  return alerts.alerts.filter((a) => a.group === name);
}

function alertBadges(name) {
  return alertsOf(name).map((a) =>
    el(
      "span",
      { class: `alert severity-${a.severity}`, title: `${a.summary} (since ${fmtTime(a.starts_at)})` },
      a.name,
    ),
  );
}

function deploymentNote(d) {
  if (!d) return null;
  const failed = d.state === "failed" || d.state === "aborted";
  const ended = ["succeeded", "failed", "aborted", "rolled_back", "superseded"].includes(d.state);
  if (ended && !failed) return null; // a deployment that went well is just the group's version
  return el(
    "span",
    { class: failed ? "alert" : "alert severity-warning", title: d.reason || d.state },
    `deployment ${d.id}: ${d.state}`,
  );
}

function scaleControl(g) {
  const allowed = canChange(who);
  const input = el("input", {
    type: "number",
    min: "0",
    disabled: !allowed,
    "aria-label": `instances of ${g.name}`,
    class: "scale-input",
  });
  const message = el("span", { class: "muted scale-message" });
  const button = el(
    "button",
    {
      type: "button",
      class: "scale",
      disabled: !allowed,
      title: allowed ? `scale ${g.name}` : "a viewer cannot change anything",
    },
    "Scale",
  );
  button.addEventListener("click", async () => {
    button.disabled = true;
    message.textContent = "";
    try {
      await api(`/v1/groups/${encodeURIComponent(g.name)}/scale`, {
        method: "POST",
        body: { instances: Number(input.value), reason: "from the web UI" },
      });
    } catch (err) {
      message.textContent = err instanceof ApiError ? err.fields.instances || err.message : String(err);
      message.className = "error scale-message";
    } finally {
      button.disabled = false;
    }
  });
  return el("span", {}, input, " ", button, " ", message);
}

function fillRow(row, g) {
  // the scale control stays the same element (what a person types in it is kept)
  const h = g.health;
  const pending = g.pending ? el("div", { class: "muted", title: g.pending }, g.pending) : null;
  const unknown = g.known ? null : el("div", { class: "muted" }, "no status from its scheduler");
  row.cells.cluster.textContent = g.cluster;
  put(row.cells.health, healthBar(h), pending, unknown);
  row.cells.ready.textContent = `${h.ready}/${h.desired}`;
  row.cells.build.textContent = g.build;
  put(row.cells.alerts, alertBadges(g.name), deploymentNote(g.deployment));
  if (document.activeElement !== row.input && (row.group === undefined || row.group.instances !== g.instances)) {
    row.input.value = String(g.instances);
  }
  row.group = g;
}

function newRow(g) {
  const cells = {
    cluster: el("td"),
    health: el("td"),
    ready: el("td", { class: "num ready-count" }),
    build: el("td", { class: "mono build" }),
    alerts: el("td", { class: "alerts" }),
  };
  const control = scaleControl(g);
  const tr = el(
    "tr",
    { dataset: { group: g.name } },
    el("td", {}, el("a", { href: `/ui/groups/${encodeURIComponent(g.name)}` }, g.name)),
    cells.cluster,
    cells.health,
    cells.ready,
    cells.build,
    cells.alerts,
    el("td", {}, control),
  );
  return { tr, cells, input: control.querySelector(".scale-input"), text: "", sequence: -1, group: undefined };
}

function matchesFilter(name) {
  const want = $("group-filter").value.trim();
  return !want || name.includes(want);
}

function setRow(g, sequence) {
  const text = JSON.stringify(g);
  let row = rows.get(g.name);
  if (row !== undefined && (sequence < row.sequence || row.text === text)) return false; // older, or same
  if (row === undefined) {
    row = newRow(g);
    row.tr.hidden = !matchesFilter(g.name);
    rows.set(g.name, row);
  }
  fillRow(row, g);
  row.text = text;
  row.sequence = sequence;
  return true;
}

function placeRows() {
  const names = [...rows.keys()].sort();
  const body = document.querySelector("#groups tbody");
  const fragment = document.createDocumentFragment();
  for (const name of names) fragment.appendChild(rows.get(name).tr);
  body.replaceChildren(fragment);
  $("group-count").textContent = `(${names.length})`;
}

function applyOverview(o) {
  latestSequence = Math.max(latestSequence, o.sequence);
  renderClusters(o.clusters);
  const names = new Set(o.groups.map((g) => g.name));
  for (const name of [...rows.keys()]) if (!names.has(name)) rows.delete(name);
  for (const g of o.groups) setRow(g, o.sequence);
  placeRows();
}

function applyChanges(change) {
  latestSequence = Math.max(latestSequence, change.sequence);
  let added = false;
  for (const g of change.changed) {
    const known = rows.has(g.name);
    if (setRow(g, change.sequence)) marks.applied[g.name] = performance.now();
    added = added || !known;
  }
  for (const name of change.removed) {
    const row = rows.get(name);
    if (row !== undefined && row.sequence <= change.sequence) {
      row.tr.remove();
      rows.delete(name);
    }
  }
  if (added) placeRows();
  else $("group-count").textContent = `(${rows.size})`;
}

async function refreshAlerts() {
  let next = { configured: false, alerts: [] };
  let trouble = "";
  try {
    next = await api("/v1/alerts");
  } catch (err) {
    // 404: the gateway has no alerting yet; configured:false: no Alertmanager. Both: no alerts.
    if (!(err instanceof ApiError && err.status === 404)) trouble = `alerts: ${err.message}`;
  }
  const before = JSON.stringify(alerts);
  alerts = next && Array.isArray(next.alerts) ? next : { configured: false, alerts: [] };
  const box = $("alerts");
  const firing = alerts.alerts;
  box.hidden = firing.length === 0 && !trouble;
  put(
    box,
    el("h2", {}, `Firing alerts (${firing.length})`),
    trouble ? el("p", { class: "warn" }, trouble) : null,
    el(
      "ul",
      {},
      firing.map((a) =>
        el(
          "li",
          { dataset: { alert: a.name } },
          el("span", { class: `alert severity-${a.severity}` }, a.name),
          a.group ? el("a", { href: `/ui/groups/${encodeURIComponent(a.group)}` }, a.group) : null,
          ` ${a.summary} `,
          el("span", { class: "muted" }, `since ${fmtTime(a.starts_at)}`),
        ),
      ),
    ),
  );
  if (JSON.stringify(alerts) !== before) {
    for (const row of rows.values()) {
      put(row.cells.alerts, alertBadges(row.group.name), deploymentNote(row.group.deployment));
    }
  }
}

function renderLegend() {
  const labels = { ready: "ready", unhealthy: "unhealthy", starting: "starting", waiting: "waiting for a host", over: "over capacity" };
  $("legend").replaceChildren(
    ...HEALTH_PARTS.map((p) => el("span", {}, el("span", { class: `swatch seg-${p}` }), labels[p])),
  );
}

async function main() {
  nav("overview");
  renderLegend();
  $("group-filter").addEventListener("input", () => {
    for (const [name, row] of rows) row.tr.hidden = !matchesFilter(name);
  });
  try {
    who = await session();
  } catch (err) {
    showError(err.message);
    return;
  }
  try {
    applyOverview(await api("/v1/overview"));
    marks.firstRender = performance.now();
  } catch (err) {
    showError(`the overview could not be read: ${err.message}`);
  }
  refreshAlerts();
  setInterval(refreshAlerts, ALERTS_EVERY_MS);
  const live = $("live");
  stream(
    "/v1/overview/stream",
    ({ type, data }) => {
      if (type === "overview") {
        applyOverview(data);
        showError("");
        if (marks.live === null) marks.live = performance.now();
        live.textContent = "live";
        live.className = "status live";
      } else if (type === "groups") {
        applyChanges(data);
      } else if (type === "clusters") {
        renderClusters(data.clusters);
      }
    },
    {
      onState: (state) => {
        if (state === "closed") {
          live.textContent = "reconnecting";
          live.className = "status offline";
        }
      },
    },
  );
}

main();
