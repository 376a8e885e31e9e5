// The events page: the log's events, newest first, live. History from GET /v1/events (the last
// HISTORY that match the type and actor filters), then /v1/events/stream from the next sequence.
// The group filter matches an event about the group itself or about one of its tasks or
// deployments (the event's data names the group), so it is applied here, to history and live alike.
import { api, el, fmtTime, nav, session, stream } from "/ui/static/common.js";

const HISTORY = 500;
const KEEP = 2000; // rows kept on the page; older ones drop off the bottom
const $ = (id) => document.getElementById(id);

let following = null;
let shown = 0;
let generation = 0;
const types = new Set();

function filters() {
  return {
    group: $("filter-group").value.trim(),
    type: $("filter-type").value.trim(),
    actor: $("filter-actor").value.trim(),
  };
}

function groupOf(ev) {
  if (ev.aggregate_type === "group") return ev.aggregate_id;
  // a task's id is "<group>.<uuid>" (a group's name is a DNS label: it has no dot)
  if (ev.aggregate_type === "task") return ev.aggregate_id.split(".")[0];
  const data = ev.data || {};
  if (typeof data.group === "string") return data.group;
  return ev.aggregate_id;
}

function matches(ev, f) {
  if (f.type && ev.type !== f.type) return false;
  if (f.actor && ev.actor !== f.actor) return false;
  if (f.group && groupOf(ev) !== f.group) return false;
  return true;
}

function details(ev) {
  const text = JSON.stringify(ev.data || {});
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

function row(ev, fresh) {
  if (!types.has(ev.type)) {
    types.add(ev.type);
    $("event-types").appendChild(el("option", { value: ev.type }));
  }
  return el(
    "tr",
    { class: fresh ? "new" : null, dataset: { sequence: String(ev.sequence), type: ev.type } },
    el("td", { class: "num" }, String(ev.sequence)),
    el("td", {}, fmtTime(ev.time)),
    el("td", { class: "type" }, ev.type),
    el("td", { class: "aggregate", title: ev.subject }, `${ev.aggregate_type} ${ev.aggregate_id}`),
    el("td", { class: "actor" }, ev.actor),
    el("td", { class: "mono details", title: JSON.stringify(ev.data || {}) }, details(ev)),
  );
}

function count() {
  $("shown").textContent = `${shown} shown`;
}

function prepend(ev) {
  const body = document.querySelector("#events tbody");
  body.prepend(row(ev, true));
  shown += 1;
  while (body.children.length > KEEP) {
    body.lastElementChild.remove();
    shown -= 1;
  }
  count();
}

async function load() {
  const mine = ++generation;
  if (following !== null) following.close();
  const f = filters();
  const query = new URLSearchParams({ latest: "true", limit: String(HISTORY) });
  if (f.type) query.set("type", f.type);
  if (f.actor) query.set("actor", f.actor);
  let page;
  try {
    page = await api(`/v1/events?${query}`);
  } catch (err) {
    $("events-error").textContent = `history: ${err.message}`;
    $("events-error").hidden = false;
    return;
  }
  if (mine !== generation) return; // the filters changed again meanwhile
  $("events-error").hidden = true;
  const body = document.querySelector("#events tbody");
  const history = page.events.filter((ev) => matches(ev, f)).reverse();
  body.replaceChildren(...history.map((ev) => row(ev, false)));
  shown = history.length;
  count();
  // live from just after the history; with none, from now on
  const last = page.events.length ? page.events[page.events.length - 1].sequence : null;
  const path = last === null ? "/v1/events/stream" : `/v1/events/stream?from=${last + 1}`;
  const live = $("live");
  following = stream(
    path,
    ({ data }) => {
      if (mine !== generation || typeof data !== "object" || data === null) return;
      if (matches(data, filters())) prepend(data);
    },
    {
      onState: (state) => {
        live.textContent = state === "open" ? "live" : "reconnecting";
        live.className = state === "open" ? "status live" : "status offline";
      },
    },
  );
}

function fromQuery() {
  const params = new URLSearchParams(window.location.search);
  for (const name of ["group", "type", "actor"]) {
    if (params.has(name)) $(`filter-${name}`).value = params.get(name);
  }
}

function toQuery() {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(filters())) if (value) params.set(name, value);
  const text = params.toString();
  window.history.replaceState(null, "", text ? `?${text}` : window.location.pathname);
}

function main() {
  nav("events");
  fromQuery();
  let timer = null;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      toQuery();
      load();
    }, 250);
  };
  for (const name of ["group", "type", "actor"]) $(`filter-${name}`).addEventListener("input", changed);
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    changed();
  });
  session().then(load, (err) => {
    $("events-error").textContent = err.message;
    $("events-error").hidden = false;
  });
}

main();
