// Consumer groups: the list, and one group's members, assignment, committed and end
// offsets and lag per partition, with its lag over time.

import { del, get, seg } from "../api.js";
import { lineChart } from "../chart.js";
import * as fmt from "../format.js";
import { act, confirmAction, h, link, pagedTable, replace } from "../ui.js";

/** How often a group is read again, ms. */
const REFRESH_MS = 2000;
/** Partitions drawn as their own lag series; past this, only the total. */
const MAX_CHART_SERIES = 8;

export async function render(cx) {
  if (cx.args.length) return group(cx, cx.args[0]);
  const table = pagedTable({
    label: "Consumer groups",
    filter: (g) => `${g.group} ${g.topic}`,
    columns: [
      { label: "Group", value: (g) => link(`/groups/${encodeURIComponent(g.group)}`, g.group) },
      { label: "Topic", value: (g) => link(`/topics/${encodeURIComponent(g.topic)}`, g.topic) },
      { label: "Mode", value: (g) => g.mode },
      { label: "Members", num: true, value: (g) => g.members },
      { label: "Generation", num: true, value: (g) => g.generation },
    ],
    empty: "No consumer groups yet.",
  });
  replace(cx.main, h("h1", {}, "Consumer groups"), h("section", { class: "panel" }, table.el));
  await cx.every(REFRESH_MS, async () => table.update((await get("/v1/groups", { signal: cx.signal })).groups));
}

async function group(cx, name) {
  const path = `/v1/groups/${seg(name)}`;
  const head = h("div", { class: "cards" });
  const members = pagedTable({
    label: "Members",
    columns: [
      { label: "Member", value: (m) => h("code", {}, m.member_id) },
      { label: "Client", value: (m) => m.client_name || "–" },
      { label: "Partitions", value: (m) => m.partitions.join(", ") || "–" },
      { label: "Session timeout", num: true, value: (m) => fmt.duration(m.session_timeout_ms) },
    ],
    empty: "No members now.",
  });
  const owner = new Map();
  const partitions = pagedTable({
    label: "Partitions",
    columns: [
      { label: "Partition", num: true, value: (p) => p.partition },
      { label: "Member", value: (p) => owner.get(p.partition) || "–" },
      { label: "Committed", num: true, value: (p) => p.committed_offset ?? "–" },
      { label: "End", num: true, value: (p) => p.end_offset },
      { label: "Lag", num: true, value: (p) => h("span", { "data-testid": "lag" }, fmt.count(p.lag)) },
      { label: "In flight", num: true, value: (p) => p.queue ? p.queue.in_flight : "–" },
      { label: "Waiting retry", num: true, value: (p) => p.queue ? p.queue.waiting_retry : "–" },
      { label: "Dead-lettered", num: true, value: (p) => p.queue ? p.queue.dead_lettered : "–" },
    ],
  });
  let chart = null;
  const chartBox = h("div");
  replace(cx.main, h("h1", {}, `Group ${name}`), head,
    h("div", { class: "toolbar" }, h("button", { class: "danger", onclick: (e) => act(e.target, async () => {
      if (!(await confirmAction(`Delete group ${name} and its committed offsets?`, name))) return;
      await del(path);
      location.hash = "#/groups";
    }) }, "Delete group")),
    h("section", { class: "panel" }, h("h2", {}, "Lag over time"), chartBox),
    h("section", { class: "panel" }, h("h2", {}, "Members"), members.el),
    h("section", { class: "panel" }, h("h2", {}, "Partitions"), partitions.el));
  await cx.every(REFRESH_MS, async () => {
    const g = await get(path, { signal: cx.signal });
    owner.clear();
    for (const m of g.members) for (const p of m.partitions) owner.set(p, m.client_name || m.member_id);
    const perPartition = g.partitions.length <= MAX_CHART_SERIES;
    const names = perPartition ? g.partitions.map((p) => `partition ${p.partition}`) : ["total lag"];
    if (!chart) {
      chart = lineChart(names, { format: fmt.count, label: "Lag per partition over time" });
      replace(chartBox, chart.el);
    } else chart.rename(names);
    chart.push(perPartition ? g.partitions.map((p) => p.lag) : [g.partitions.reduce((s, p) => s + p.lag, 0)]);
    const lag = g.partitions.reduce((s, p) => s + p.lag, 0);
    replace(head,
      h("div", { class: "card" }, h("div", { class: "label" }, "Topic"), h("div", { class: "value" }, link(`/topics/${encodeURIComponent(g.topic)}`, g.topic))),
      h("div", { class: "card" }, h("div", { class: "label" }, "Mode"), h("div", { class: "value" }, g.mode)),
      h("div", { class: "card" }, h("div", { class: "label" }, "Generation"), h("div", { class: "value" }, g.generation)),
      h("div", { class: "card" }, h("div", { class: "label" }, "Members"), h("div", { class: "value" }, g.members.length)),
      h("div", { class: "card" }, h("div", { class: "label" }, "Total lag"), h("div", { class: "value", "data-testid": "total-lag" }, fmt.count(lag))),
      g.redeliveries === null || g.redeliveries === undefined ? null
        : h("div", { class: "card" }, h("div", { class: "label" }, "Redeliveries"), h("div", { class: "value" }, fmt.count(g.redeliveries))));
    members.update(g.members);
    partitions.update(g.partitions);
  });
}
