// The group page's panels: each a function from what the API answered to DOM (group.js fetches,
// follows the streams and calls these). `ctx`: {canChange, past, act} — `past`: time travel is
// on (every change button is off then), `act(name, ...args)`: a button's action.

import { el, fmtTime, healthBar } from "/ui/static/common.js";
import { lineChart } from "/ui/static/charts.js";
import { toYaml } from "/ui/static/yaml.js";

const ENDED = new Set(["FINISHED", "FAILED", "KILLED", "ERROR", "LOST", "DROPPED", "GONE", "GONE_BY_OPERATOR"]);
const VERSION_EVENTS = new Set(["GroupCreated", "GroupUpdated", "GroupRolledBack"]);

function button(label, attrs, ctx, action, ...args) {
  const off = !ctx.canChange || ctx.past;
  const why = ctx.past ? "this is the past: back to live to change" : "operators only";
  return el(
    "button",
    { type: "button", disabled: off, title: off ? why : null, onclick: () => ctx.act(action, ...args), ...attrs },
    label,
  );
}

/** Counts for a health bar from the tasks the page has (live or past). */
export function countsOf(tasks, desired) {
  const alive = tasks.filter((t) => !ENDED.has(t.state));
  const ready = alive.filter((t) => t.ready).length;
  const unhealthy = alive.filter((t) => t.healthy === false).length;
  const starting = alive.filter((t) => !t.ready && t.healthy !== false && !t.kill_reason).length;
  const over = Math.max(0, ready + unhealthy + starting - desired);
  return { desired, ready, unhealthy, starting, over, waiting: Math.max(0, desired - alive.length) };
}

export function renderSummary(group, tasks, status) {
  const desired = group.instances ?? group.spec.instances;
  const counts = countsOf(tasks, desired);
  if (status && status.pending) counts.waiting = status.pending.count;
  const builds = group.targets.map((t) => `v${t.version}${t.build ? ` (${t.build})` : ""}: ${t.instances}`);
  const parts = [
    el("div", { class: "facts" },
      el("span", {}, "version ", el("b", { id: "version" }, String(group.version))),
      el("span", {}, "instances ", el("b", { id: "instances" }, String(desired))),
      el("span", {}, "ready ", el("b", { id: "ready-count" }, String(counts.ready))),
      el("span", {}, "cluster ", el("b", {}, group.spec.cluster)),
      el("span", {}, "service ", el("b", {}, group.spec.service || group.spec.name)),
      el("span", { class: "muted" }, "running ", builds.join(", ") || "nothing"),
      group.deleted ? el("span", { class: "badge bad" }, "deleted") : null,
    ),
    healthBar(counts),
    status && status.pending && status.pending.summary ? el("p", { class: "warn" }, status.pending.summary) : null,
  ];
  return parts.filter((p) => p !== null);
}

export function renderSpec(group) {
  return el("pre", { id: "spec-yaml" }, toYaml(group.spec));
}

/** Version events of the history, newest first: [{version, type, sequence, time, actor, build}]. */
export function versionsOf(history) {
  return history
    .filter((e) => VERSION_EVENTS.has(e.type))
    .map((e) => ({
      version: Number(e.data.version || 0),
      type: e.type,
      sequence: e.sequence,
      time: e.time,
      actor: e.actor,
      build: (e.data.spec && e.data.spec.build) || "",
    }))
    .reverse();
}

export function renderVersions(versions, current, ctx) {
  const rows = versions.map((v) =>
    el("tr", { dataset: { version: String(v.version) }, class: v.version === current ? "current" : null },
      el("td", { class: "num" }, `v${v.version}`),
      el("td", {}, v.type.replace("Group", "").toLowerCase()),
      el("td", {}, fmtTime(v.time)),
      el("td", {}, v.actor),
      el("td", { class: "mono" }, v.build || "—"),
      el("td", {}, v.version === current
        ? el("span", { class: "badge good" }, "current")
        : button(`Roll back to v${v.version}`, { class: "secondary rollback", dataset: { version: String(v.version) } },
            ctx, "rollback", v.version)),
    ),
  );
  return el("table", { id: "versions-table" },
    el("thead", {}, el("tr", {}, ...["Version", "Change", "Time", "Actor", "Build", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows),
  );
}

const CONTEXT = 2; // unchanged lines kept around a change

export function renderDiff(lines) {
  if (lines.every((d) => d.op === " ")) return el("p", { class: "muted", id: "diff-same" }, "the two specs are the same");
  const near = lines.map((_, i) =>
    lines.slice(Math.max(0, i - CONTEXT), i + CONTEXT + 1).some((d) => d.op !== " "));
  const out = [];
  lines.forEach((d, i) => {
    if (!near[i]) {
      if (i === 0 || near[i - 1]) out.push(el("span", { class: "gap" }, "  …\n"));
      return;
    }
    out.push(el("span", { class: d.op === "+" ? "add" : d.op === "-" ? "del" : "same" }, `${d.op} ${d.text}\n`));
  });
  return el("pre", { class: "diff", id: "diff-text" }, out);
}

export function renderTasks(tasks, ctx) {
  const rows = [...tasks].reverse().map((t) =>
    el("tr", { dataset: { task: t.id, state: t.state }, class: ENDED.has(t.state) ? "ended" : null },
      el("td", { class: "mono" }, t.id),
      el("td", {}, `v${t.group_version}`),
      el("td", {}, el("span", { class: `state state-${t.ready ? "ready" : t.state.toLowerCase()}` },
        t.ready ? "ready" : t.state.toLowerCase())),
      el("td", {}, t.host_address || t.hostname),
      el("td", { class: "mono" }, Object.entries(t.ports).map(([k, v]) => `${k}:${v}`).join(" ")),
      el("td", {}, fmtTime(t.launched_at)),
      el("td", { class: "muted" }, t.kill_reason ? `being killed: ${t.kill_reason}` : t.message),
      el("td", {}, ctx.past ? null : el("button", { type: "button", class: "secondary logs", onclick: () => ctx.act("logs", t.id) }, "log")),
    ),
  );
  return el("table", { id: "tasks-table" },
    el("thead", {}, el("tr", {}, ...["Task", "Version", "State", "Host", "Ports", "Launched", "Message", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 8, class: "muted" }, "no tasks"))),
  );
}

/** The deployment panel. Latest first: an ended deployment is history, told in grey; it never
 * paints the group red (its health is the tasks' now). */
export function renderDeployment(d, ctx) {
  if (!d) return el("p", { class: "muted" }, "no deployment yet");
  const active = d.state === "running" || d.state === "paused" || d.rolling_back;
  const steps = d.steps.map((s, i) =>
    el("li", { class: `step step-${s.state}${i === d.current_step ? " now" : ""}` },
      el("b", {}, s.name), ` ${s.state}`, s.message ? el("span", { class: "muted" }, ` — ${s.message}`) : null));
  const controls = active
    ? el("div", { class: "filters" },
        d.state === "paused"
          ? button("Resume", { id: "deploy-resume" }, ctx, "deploy", "resume")
          : button("Pause", { id: "deploy-pause", class: "secondary" }, ctx, "deploy", "pause"),
        button("Promote", { id: "deploy-promote" }, ctx, "deploy", "promote"),
        button("Abort", { id: "deploy-abort", class: "secondary danger" }, ctx, "deploy", "abort"))
    : null;
  return el("div", { id: "deployment-body", dataset: { state: d.state } },
    el("p", {},
      el("b", {}, d.id), ` ${d.strategy.kind || d.strategy} v${d.from_version} → v${d.to_version} `,
      el("span", { class: `badge ${active ? "warn" : d.state === "succeeded" ? "good" : "past"}` }, d.state),
      active ? null : el("span", { class: "muted" }, ` ended ${fmtTime(d.updated)}: history, not the group's health now`)),
    d.reason ? el("p", { class: "muted" }, d.reason) : null,
    el("ol", { class: "steps" }, steps),
    controls,
  );
}

export function renderAutoscale(status) {
  if (!status) return el("p", { class: "muted" }, "not autoscaled (no policy)");
  const p = status.policy;
  const decisions = status.decisions.map((d) =>
    el("tr", {}, el("td", {}, fmtTime(d.at)), el("td", { class: "num" }, `${d.from} → ${d.to}`),
      el("td", {}, d.rule), el("td", { class: "muted" }, d.reason)));
  return el("div", {},
    el("p", {}, `min ${p.min} · max ${p.max} · now ${status.current} (${status.ready} ready) · `,
      el("span", { class: "muted" }, status.reason || "")),
    decisions.length
      ? el("table", { id: "autoscale-decisions" },
          el("thead", {}, el("tr", {}, ...["Time", "Change", "Rule", "Why"].map((h) => el("th", {}, h)))),
          el("tbody", {}, decisions))
      : el("p", { class: "muted" }, "no decision yet"));
}

export function renderDns(lookup) {
  if (!lookup) return el("p", { class: "muted" }, "the DNS service does not know the service (yet)");
  const answers = lookup.records.map((r) =>
    el("tr", {}, el("td", { class: "mono" }, r.name), el("td", {}, r.type), el("td", { class: "mono" }, r.data)));
  const tasks = lookup.tasks.map((t) =>
    el("tr", { dataset: { task: t.id, answered: String(t.answered) } },
      el("td", { class: "mono" }, t.id),
      el("td", {}, t.answered ? el("span", { class: "badge good" }, "answered") : el("span", { class: "badge past" }, "not answered")),
      el("td", { class: "muted" }, t.reason)));
  return el("div", {},
    el("h3", {}, "Answers"),
    el("table", { id: "dns-records" }, el("tbody", {}, answers.length ? answers : el("tr", {}, el("td", { class: "muted" }, "no records")))),
    el("h3", {}, "Tasks and why not"),
    el("table", { id: "dns-tasks" }, el("tbody", {}, tasks)));
}

const secs = (iso) => new Date(iso).getTime() / 1000;
const pct = (v) => `${Math.round(v * 100)}%`;

const count = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

export function renderCharts(charts, holders) {
  const to = Date.now() / 1000;
  // a group younger than the window: the axis starts a little before its first point
  const first = Math.min(to, ...charts.ready.map((p) => secs(p.time)), ...charts.usage.map((p) => secs(p.time)));
  const from = Math.max(secs(charts.since), first - Math.max(10, (to - first) * 0.05));
  const most = Math.max(1, ...charts.ready.map((p) => Math.max(p.ready, p.desired)));
  lineChart(holders.ready, {
    from, to,
    series: [
      { name: "desired", cls: "desired", step: true, points: charts.ready.map((p) => [secs(p.time), p.desired]) },
      { name: "ready", cls: "ready", step: true, points: charts.ready.map((p) => [secs(p.time), p.ready]) },
    ],
    max: most + Math.max(1, Math.ceil(most / 10)),
    format: count,
  });
  const usage = (key) => charts.usage.map((p) => [secs(p.time), p[key]]);
  const top = (key) => Math.max(1, ...charts.usage.map((p) => p[key] || 0));
  lineChart(holders.cpu, { from, to, series: [{ name: "cpu / asked", cls: "cpu", points: usage("cpu") }], max: top("cpu"), format: pct });
  lineChart(holders.mem, { from, to, series: [{ name: "memory / limit", cls: "mem", points: usage("mem") }], max: top("mem"), format: pct });
}
