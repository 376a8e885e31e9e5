// The group page, /ui/groups/{name}: the group live (its status stream and its events stream
// trigger fresh reads), or — time travel — as it was at a past event or time (`?at=` on the page
// and on the API: GET /v1/groups/{name}?at= and /tasks?at=, folded from the log).

import { ApiError, api, canChange, el, fmtTime, nav, session, stream } from "/ui/static/common.js";
import * as panels from "/ui/static/group-panels.js";
import { diffLines, toYaml } from "/ui/static/yaml.js";

const name = decodeURIComponent(window.location.pathname.split("/").filter(Boolean).pop() || "");
const path = `/v1/groups/${encodeURIComponent(name)}`;
const $ = (id) => document.getElementById(id);

const state = {
  who: null,
  past: new URLSearchParams(window.location.search).get("at"), // null: live
  group: null,
  history: [],
  tasks: [],
  status: null,
  deployment: null,
  specs: new Map(), // sequence -> the spec then (for diffs)
  diffPicked: false, // the user chose the two versions to compare (else: the latest change)
  log: null, // {task, controller}
};

function ctx() {
  return { canChange: canChange(state.who), past: state.past !== null, act };
}

function show(id, message) {
  const node = $(id);
  node.textContent = message || "";
  node.hidden = !message;
}

function failed(holder, err) {
  $(holder).replaceChildren(el("p", { class: "error" }, err instanceof ApiError ? err.message : String(err)));
}

async function optional(p) {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

// ---- reading ----

async function loadGroup() {
  const at = state.past;
  const q = at === null ? "" : `?at=${encodeURIComponent(at)}`;
  const [group, tasks, history] = await Promise.all([
    api(`${path}${q}`),
    api(`${path}/tasks${q}${q ? "&" : "?"}all=true`),
    api(`${path}/history`),
  ]);
  if (at !== state.past) return; // the user moved meanwhile
  state.group = group;
  state.tasks = tasks.tasks;
  state.status = at === null ? tasks.status : null;
  state.history = history.events;
  if (at !== null) state.deployment = group.deployment;
  show("group-error", "");
  renderGroup();
}

async function loadDeployment() {
  if (state.past !== null) return;
  try {
    state.deployment = await optional(api(`${path}/deployment`));
    $("deployment").replaceChildren(panels.renderDeployment(state.deployment, ctx()));
  } catch (err) {
    failed("deployment", err);
  }
}

async function loadAutoscale() {
  try {
    $("autoscale").replaceChildren(panels.renderAutoscale(await optional(api(`${path}/autoscale/status`))));
  } catch (err) {
    failed("autoscale", err);
  }
}

async function loadLiveOnly() {
  if (state.past !== null || state.group === null) return;
  const spec = state.group.spec;
  const service = spec.service || spec.name;
  $("dns-service").textContent = service;
  const dns = optional(api(`/v1/dns/${encodeURIComponent(service)}?cluster=${encodeURIComponent(spec.cluster)}`));
  const charts = api(`${path}/charts`);
  try {
    $("dns").replaceChildren(panels.renderDns(await dns));
  } catch (err) {
    failed("dns", err);
  }
  try {
    panels.renderCharts(await charts, { ready: $("chart-ready"), cpu: $("chart-cpu"), mem: $("chart-mem") });
  } catch (err) {
    failed("chart-ready", err);
  }
}

// ---- drawing ----

function renderGroup() {
  const g = state.group;
  const c = ctx();
  $("summary").replaceChildren(...panels.renderSummary(g, state.tasks, state.status));
  $("spec").replaceChildren(panels.renderSpec(g));
  // in the past, the versions the group had then (the event list still reaches the present)
  const then = state.past === null ? state.history : state.history.filter((e) => e.sequence <= g.at_sequence);
  const versions = panels.versionsOf(then);
  $("versions").replaceChildren(panels.renderVersions(versions, g.version, c));
  fillDiffChoices(versions, g.version);
  $("tasks").replaceChildren(panels.renderTasks(state.tasks, c));
  const alive = state.tasks.filter((t) => !["FINISHED", "FAILED", "KILLED", "ERROR", "LOST"].includes(t.state));
  $("task-count").textContent = `${alive.length} alive, ${state.tasks.length - alive.length} ended`;
  if (state.past !== null) $("deployment").replaceChildren(panels.renderDeployment(state.deployment, c));
  fillEvents();
  renderPast();
}

function renderPast() {
  const past = state.past !== null;
  document.body.classList.toggle("past", past);
  $("past-banner").hidden = !past;
  if (past && state.group) {
    $("past-text").textContent =
      `Viewing the past: the group as it was after event #${state.group.at_sequence} ` +
      `(${fmtTime(state.group.at_time)} UTC). Nothing here is live and nothing can be changed.`;
  }
  for (const node of document.querySelectorAll(".live-only")) node.hidden = past;
  $("live").hidden = past;
}

function fillEvents() {
  const select = $("tt-event");
  const keep = state.past;
  const key = `${state.history.map((e) => e.sequence).join(",")}@${keep}`;
  if (select.dataset.key === key) return; // unchanged: the list (and a choice being made) stays
  select.dataset.key = key;
  const options = [...state.history].reverse().map((e) => {
    const d = e.data;
    const detail = e.type === "GroupScaled" ? ` → ${d.instances}` : d.version ? ` v${d.version}` : "";
    return el("option", { value: String(e.sequence), selected: keep === String(e.sequence) },
      `#${e.sequence} ${fmtTime(e.time)} ${e.type}${detail}`);
  });
  select.replaceChildren(el("option", { value: "" }, "— pick an event of the group —"), ...options);
}

function fillDiffChoices(versions, current) {
  const a = $("diff-a");
  const b = $("diff-b");
  const key = versions.map((v) => v.sequence).join(",");
  if (a.dataset.key === key) return;
  a.dataset.key = key;
  const was = state.diffPicked ? [a.value, b.value] : ["", ""]; // else: the latest change
  const opts = (selected) =>
    versions.map((v) => el("option", { value: String(v.sequence), selected: String(v.sequence) === selected }, `v${v.version}`));
  const cur = versions.find((v) => v.version === current) || versions[0];
  const prev = versions.find((v) => v !== cur) || cur;
  if (!cur) return;
  a.replaceChildren(...opts(was[0] || String(prev.sequence)));
  b.replaceChildren(...opts(was[1] || String(cur.sequence)));
  showDiff();
}

async function specAt(sequence) {
  if (!state.specs.has(sequence)) {
    const then = await api(`${path}?at=${sequence}`);
    const { instances, ...spec } = then.spec; // scaling is not a version: left out of the diff
    state.specs.set(sequence, spec);
  }
  return state.specs.get(sequence);
}

async function showDiff() {
  const [a, b] = [$("diff-a").value, $("diff-b").value];
  if (!a || !b) return;
  try {
    const [x, y] = await Promise.all([specAt(a), specAt(b)]);
    $("diff").replaceChildren(panels.renderDiff(diffLines(toYaml(x), toYaml(y))));
  } catch (err) {
    failed("diff", err);
  }
}

// ---- acting ----

async function act(action, ...args) {
  show("action-error", "");
  try {
    if (action === "rollback") {
      await api(`${path}/rollback`, { method: "POST", body: { version: args[0] } });
      await loadGroup();
    } else if (action === "deploy") {
      await api(`${path}/deployment/${args[0]}`, { method: "POST" });
      await loadDeployment();
    } else if (action === "logs") {
      followLog(args[0]);
    }
  } catch (err) {
    show("action-error", err instanceof ApiError ? `${err.message}${err.hint ? ` (${err.hint})` : ""}` : String(err));
  }
}

const LOG_KEEP = 200000; // characters kept on the page: a chatty task must not grow it forever

async function followLog(taskId) {
  stopLog();
  const controller = new AbortController();
  state.log = { task: taskId, controller };
  $("log-panel").hidden = false;
  $("log-task").textContent = taskId;
  $("log-state").textContent = "following";
  const out = $("log");
  out.textContent = "";
  const which = $("log-stream").value;
  const url = `/v1/tasks/${encodeURIComponent(taskId)}/logs?follow=true&tail=200&stream=${which}`;
  try {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store", signal: controller.signal });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.message || `the log answered ${response.status}`);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = out.textContent + value;
      out.textContent = text.length > LOG_KEEP ? text.slice(text.length - LOG_KEEP) : text;
      out.scrollTop = out.scrollHeight;
    }
    if (state.log && state.log.task === taskId) $("log-state").textContent = "ended (the task ended)";
  } catch (err) {
    if (state.log && state.log.task === taskId && err.name !== "AbortError") {
      $("log-state").textContent = `broke off: ${err.message}`;
    }
  }
}

function stopLog() {
  if (state.log) state.log.controller.abort();
  state.log = null;
}

// ---- time travel ----

function travel(at) {
  state.past = at;
  const url = at === null ? window.location.pathname : `${window.location.pathname}?at=${encodeURIComponent(at)}`;
  window.history.replaceState(null, "", url);
  if (at !== null) stopLog();
  loadGroup()
    .then(() => (at === null ? Promise.all([loadDeployment(), loadLiveOnly()]) : null))
    .catch((err) => {
      show("group-error", err instanceof ApiError ? err.message : String(err));
      renderPast();
    });
}

// ---- live ----

let pending = null;
function soon(fn) {
  if (pending !== null) return; // one read for a burst of changes
  pending = setTimeout(() => {
    pending = null;
    if (state.past === null) fn().catch((err) => show("group-error", err.message));
  }, 150);
}

function followLive() {
  const onState = (s) => {
    const live = $("live");
    live.className = `status ${s === "open" ? "live" : "offline"}`;
    live.textContent = s === "open" ? "live" : "reconnecting";
  };
  const streams = [];
  streams.push(stream(`${path}/status/stream`, ({ type, data }) => {
    if (type !== "status" || state.past !== null) return;
    state.status = data;
    soon(loadGroup);
  }, { onState }));
  // the group's, its deployments' and its autoscaler's events: bay.ev.<kind>.<name>
  streams.push(stream(`/v1/events/stream?subject=${encodeURIComponent(`bay.ev.*.${name}`)}`, ({ type }) => {
    if (state.past !== null) return;
    if (type.startsWith("Group")) soon(loadGroup);
    else if (type.startsWith("Deployment")) loadDeployment();
    else loadAutoscale();
  }));
  const timer = setInterval(() => soon(loadLiveOnly), 5000);
  // leaving the page ends its streams at once: a browser may otherwise keep their connections
  // (six per host) busy after the page is gone, and the next page waits for a free one
  window.addEventListener("pagehide", () => {
    clearInterval(timer);
    stopLog();
    for (const s of streams) s.close();
  });
}

async function main() {
  nav("group");
  $("group-name").textContent = name;
  document.title = `${name} · Bay`;
  state.who = await session().catch(() => null);
  $("time-travel").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const at = $("tt-time").value.trim() || $("tt-event").value;
    if (at) travel(at);
  });
  $("tt-event").addEventListener("change", () => {
    $("tt-time").value = "";
    if ($("tt-event").value) travel($("tt-event").value);
  });
  $("back-live").addEventListener("click", () => travel(null));
  $("log-close").addEventListener("click", () => {
    stopLog();
    $("log-panel").hidden = true;
  });
  $("log-stream").addEventListener("change", () => state.log && followLog(state.log.task));
  for (const id of ["diff-a", "diff-b"]) {
    $(id).addEventListener("change", () => {
      state.diffPicked = true;
      showDiff();
    });
  }
  travel(state.past);
  loadAutoscale();
  followLive();
}

main();
