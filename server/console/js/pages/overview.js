// Overview: live produce and consume rates, connections, disk use per topic,
// durability, uptime and health. Rates are the difference of two readings of the
// broker's totals over the time between them.

import { get } from "../api.js";
import { lineChart } from "../chart.js";
import * as fmt from "../format.js";
import { card, h, link, pagedTable, replace } from "../ui.js";

/** Statistics are read this often, ms. */
const STATS_EVERY_MS = 1000;
/** The topic list (sizes on disk) this often, ms. */
const TOPICS_EVERY_MS = 5000;

export async function render(cx) {
  const cards = h("div", { class: "cards" });
  const chart = lineChart(["produced", "consumed"], { format: fmt.rate, label: "Messages per second, produced and consumed" });
  const sizes = new Map();
  const table = pagedTable({
    label: "Topics",
    filter: (t) => t.topic,
    columns: [
      { label: "Topic", value: (t) => link(`/topics/${encodeURIComponent(t.topic)}`, t.topic) },
      { label: "Produced/s", num: true, value: (t) => fmt.rate(t.producedRate) },
      { label: "Consumed/s", num: true, value: (t) => fmt.rate(t.consumedRate) },
      { label: "Messages", num: true, value: (t) => fmt.count(sizes.get(t.topic)?.messages) },
      { label: "On disk", num: true, value: (t) => fmt.bytes(sizes.get(t.topic)?.size_bytes) },
    ],
    empty: "No topics yet.",
  });
  replace(cx.main, h("h1", {}, "Overview"), cards,
    h("section", { class: "panel" }, h("h2", {}, "Messages per second"), chart.el),
    h("section", { class: "panel" }, h("h2", {}, "Topics"), table.el));

  let previous = null;
  const readSizes = async () => {
    const list = await get("/v1/topics", { signal: cx.signal });
    sizes.clear();
    for (const t of list.topics) sizes.set(t.name, t);
  };
  // Both lists are asked for at once; the first statistics wait for the sizes.
  const sizesRead = cx.every(TOPICS_EVERY_MS, readSizes);
  await cx.every(STATS_EVERY_MS, async () => {
    await sizesRead;
    const [stats, health] = await Promise.all([
      get("/v1/stats", { signal: cx.signal }),
      fetch("/readyz", { signal: cx.signal }).then(async (r) => ({ ok: r.ok, body: await r.json() })),
    ]);
    const now = performance.now();
    const totals = { produced: 0, consumed: 0 };
    const before = previous ? new Map(previous.topics.map((t) => [t.topic, t])) : new Map();
    const seconds = previous ? (now - previous.at) / 1000 : 0;
    const rows = stats.topics.map((t) => {
      const old = before.get(t.topic);
      const producedRate = old && seconds > 0 ? Math.max(0, t.messages_total - old.messages_total) / seconds : t.messages_per_sec;
      const consumedRate = old && seconds > 0 ? Math.max(0, t.delivered.messages_total - old.delivered.messages_total) / seconds : 0;
      totals.produced += producedRate;
      totals.consumed += consumedRate;
      return { topic: t.topic, producedRate, consumedRate };
    });
    if (previous) chart.push([totals.produced, totals.consumed]);
    previous = { at: now, topics: stats.topics };
    table.update(rows);
    const disk = [...sizes.values()].reduce((sum, t) => sum + t.size_bytes, 0);
    const messages = [...sizes.values()].reduce((sum, t) => sum + t.messages, 0);
    replace(cards,
      card("Health", h("span", { class: health.ok ? "status-ok" : "status-bad", title: health.body.reasons.join("\n") },
        health.ok ? "healthy" : `unhealthy: ${health.body.reasons.length} failed`), "overview-health"),
      card("Uptime", fmt.duration(stats.uptime_ms), "overview-uptime"),
      card("Connections", `${stats.connections} native · ${stats.http_connections} HTTP`, "overview-connections"),
      card("Topics", fmt.count(stats.topics.length), "overview-topics"),
      card("Messages held", fmt.count(messages)),
      card("Disk used", fmt.bytes(disk), "overview-disk"),
      card("Durability (default)", stats.default_durability, "overview-durability"),
      card("Produced / consumed", `${fmt.rate(totals.produced)} · ${fmt.rate(totals.consumed)}`, "overview-rates"));
  });
}
