// Topics: the list (partitions, messages, bytes, rates), create with settings, and
// delete after the name is typed.

import { del, get, post, seg } from "../api.js";
import * as fmt from "../format.js";
import { act, confirmAction, h, link, pagedTable, replace, showError } from "../ui.js";

/** How often the list is refreshed, ms. */
const REFRESH_MS = 2000;

/** "key=value" lines as the create request's config object. */
export function parseConfig(text) {
  const config = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`not key=value: ${line}`);
    const k = line.slice(0, eq).trim();
    const v = line.slice(eq + 1).trim();
    config[k] = /^-?\d+$/.test(v) ? Number(v) : v;
  }
  return config;
}

export async function deleteTopic(name) {
  if (!(await confirmAction(`Delete topic ${name} and every message in it? This cannot be undone.`, name))) return false;
  await del(`/v1/topics/${seg(name)}`);
  return true;
}

export async function render(cx) {
  const rates = new Map();
  const table = pagedTable({
    label: "Topics",
    filter: (t) => t.name,
    columns: [
      { label: "Name", value: (t) => link(`/topics/${encodeURIComponent(t.name)}`, t.name) },
      { label: "Partitions", num: true, value: (t) => t.partitions },
      { label: "Messages", num: true, value: (t) => fmt.count(t.messages) },
      { label: "Bytes", num: true, value: (t) => fmt.bytes(t.size_bytes) },
      { label: "Produced/s", num: true, value: (t) => fmt.rate(rates.get(t.name) || 0) },
      { label: "", value: (t) => t.internal ? h("span", { class: "muted" }, "internal") : h("button", {
        class: "danger", "aria-label": `Delete topic ${t.name}`,
        onclick: (e) => act(e.target, async () => { if (await deleteTopic(t.name)) await refresh(); }),
      }, "Delete") },
    ],
    empty: "No topics. Create one above.",
  });
  const internal = h("input", { type: "checkbox", onchange: () => refresh().catch(showError) });
  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9._\\-]{1,200}", "aria-label": "Topic name", placeholder: "orders" });
  const partitions = h("input", { name: "partitions", type: "number", min: 1, value: 1, "aria-label": "Partitions" });
  const config = h("textarea", { name: "config", "aria-label": "Settings", placeholder: "retention_ms=86400000\nmax_delivery_attempts=5" });
  const create = h("form", { class: "grid", onsubmit: (e) => {
    e.preventDefault();
    act(e.submitter, async () => {
      await post("/v1/topics", { name: name.value, partitions: Number(partitions.value), config: parseConfig(config.value) });
      name.value = "";
      await refresh();
    });
  } },
  h("label", {}, "Name", name), h("label", {}, "Partitions", partitions),
  h("label", {}, "Settings (key=value per line)", config),
  h("div", {}, h("button", { class: "primary", type: "submit" }, "Create topic")));

  async function refresh() {
    const [list, stats] = await Promise.all([
      get(`/v1/topics${internal.checked ? "?include_internal=true" : ""}`, { signal: cx.signal }),
      get("/v1/stats", { signal: cx.signal }).catch(() => ({ topics: [] })),
    ]);
    rates.clear();
    for (const t of stats.topics) rates.set(t.topic, t.messages_per_sec);
    table.update(list.topics);
  }
  replace(cx.main, h("h1", {}, "Topics"),
    h("section", { class: "panel" }, h("h2", {}, "Create a topic"), create),
    h("section", { class: "panel" }, h("div", { class: "toolbar" }, h("label", {}, h("span", {}, internal, " show internal topics"))), table.el));
  await cx.every(REFRESH_MS, refresh);
}
