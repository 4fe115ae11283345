// One topic: its partitions (start, end, durable offsets, size), its settings, a
// message browser by partition and offset or time, and a form that produces a test
// message.

import { get, post, query, seg } from "../api.js";
import * as fmt from "../format.js";
import { act, h, pagedTable, replace, showError } from "../ui.js";
import { deleteTopic } from "./topics.js";

/** Messages one browse page shows. */
const BROWSE_RECORDS = 25;
/** How often the partition table is refreshed, ms. */
const REFRESH_MS = 3000;

/** "k=v" lines as produce headers. */
function parseHeaders(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`a header is key=value: ${line}`);
    return { key: line.slice(0, eq), value: line.slice(eq + 1) };
  });
}

export function recordRow(record) {
  const v = fmt.value(record);
  return [
    h("td", { class: "num mono" }, record.offset),
    h("td", { class: "mono" }, fmt.time(record.timestamp_ms)),
    h("td", { class: "mono", "data-testid": "record-key" }, fmt.key(record)),
    h("td", { "data-testid": "record-headers" }, record.headers.length
      ? record.headers.map((hd) => h("span", { class: "tag mono" }, `${hd.key}=${fmt.headerValue(hd)}`)) : h("span", { class: "muted" }, "–")),
    h("td", {}, h("pre", { class: `value-${v.kind}`, "data-testid": "record-value" }, v.text)),
  ];
}

export function recordTable(records) {
  return h("table", { "aria-label": "Messages" },
    h("thead", {}, h("tr", {}, ["Offset", "Timestamp", "Key", "Headers", "Value"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, records.length ? records.map((r) => h("tr", { "data-testid": "record" }, recordRow(r)))
      : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No messages here."))));
}

export async function render(cx) {
  const [name] = cx.args;
  const path = `/v1/topics/${seg(name)}`;
  const described = await get(path, { signal: cx.signal });

  const partitions = pagedTable({
    label: "Partitions",
    columns: [
      { label: "Partition", num: true, value: (p) => p.partition },
      { label: "Start offset", num: true, value: (p) => p.start_offset },
      { label: "End offset", num: true, value: (p) => p.end_offset },
      { label: "Durable offset", num: true, value: (p) => p.durable_offset },
      { label: "Messages", num: true, value: (p) => fmt.count(p.end_offset - p.start_offset) },
      { label: "Size", num: true, value: (p) => fmt.bytes(p.size_bytes) },
    ],
  });
  const config = pagedTable({
    label: "Settings", pageRows: 100,
    columns: [{ label: "Setting", value: (e) => h("code", {}, e[0]) }, { label: "Value", value: (e) => h("code", {}, String(e[1])) }],
  });
  config.update(Object.entries(described.config));

  // The browser.
  const partition = h("select", { "aria-label": "Partition" }, described.partitions.map((p) => h("option", { value: p.partition }, `partition ${p.partition}`)));
  const offset = h("input", { type: "number", min: 0, "aria-label": "Offset", placeholder: "latest" });
  const at = h("input", { type: "datetime-local", step: 1, "aria-label": "From time" });
  const results = h("div", { "data-testid": "browse-results" });
  const where = h("span", { class: "muted" });
  let shown = null;
  async function browse(from) {
    const p = Number(partition.value);
    const info = described.partitions.find((x) => x.partition === p) || { start_offset: 0, end_offset: 0 };
    const start = from ?? Math.max(info.start_offset, info.end_offset - BROWSE_RECORDS);
    const fetched = await get(`${path}/partitions/${p}/records${query({ offset: Math.max(start, info.start_offset), max_records: BROWSE_RECORDS })}`, { signal: cx.signal });
    shown = { partition: p, from: Math.max(start, fetched.log_start_offset), next: fetched.next_offset, end: fetched.high_watermark, first: fetched.log_start_offset };
    where.textContent = `offsets ${shown.from}–${Math.max(shown.from, fetched.next_offset - 1)} of ${fetched.log_start_offset}–${fetched.high_watermark}`;
    replace(results, recordTable(fetched.records));
  }
  async function browseTime() {
    if (!at.value) throw new Error("pick a time first");
    const ms = new Date(at.value).getTime();
    const found = await get(`${path}/partitions/${Number(partition.value)}/offset${query({ timestamp_ms: ms })}`, { signal: cx.signal });
    offset.value = found.offset;
    await browse(found.offset);
  }
  const tools = h("div", { class: "toolbar" },
    h("label", {}, "Partition", partition),
    h("label", {}, "From offset", offset),
    h("button", { onclick: (e) => act(e.target, () => browse(offset.value === "" ? undefined : Number(offset.value))) }, "Go"),
    h("label", {}, "From time", at),
    h("button", { onclick: (e) => act(e.target, browseTime) }, "Go to time"),
    h("button", { "aria-label": "Older messages", onclick: (e) => act(e.target, () => browse(Math.max(shown ? shown.first : 0, (shown ? shown.from : 0) - BROWSE_RECORDS))) }, "‹ Older"),
    h("button", { "aria-label": "Newer messages", onclick: (e) => act(e.target, () => browse(shown ? shown.next : 0)) }, "Newer ›"),
    h("button", { onclick: (e) => act(e.target, async () => { await refresh(); await browse(); }) }, "Latest"),
    where);
  partition.addEventListener("change", () => browse().catch(showError));

  // The producer.
  const key = h("input", { "aria-label": "Key", placeholder: "(none)" });
  const headers = h("textarea", { "aria-label": "Headers", placeholder: "trace=on" });
  const value = h("textarea", { "aria-label": "Value", placeholder: "{\"hello\": \"world\"}" });
  const producePartition = h("select", { "aria-label": "Produce to partition" },
    h("option", { value: "" }, "by key / round-robin"),
    described.partitions.map((p) => h("option", { value: p.partition }, `partition ${p.partition}`)));
  const produced = h("span", { class: "muted", role: "status", "data-testid": "produced" });
  const produce = h("form", { class: "grid", onsubmit: (e) => {
    e.preventDefault();
    act(e.submitter, async () => {
      const record = { value: value.value, headers: parseHeaders(headers.value) };
      if (key.value) record.key = key.value;
      if (producePartition.value !== "") record.partition = Number(producePartition.value);
      const answer = await post(`${path}/records`, { records: [record] });
      const o = answer.offsets[0];
      if (o.error) throw new Error(`not produced: ${o.error.message}`);
      produced.textContent = `produced at partition ${o.partition}, offset ${o.offset}`;
      await refresh();
    });
  } },
  h("label", {}, "Key", key), h("label", {}, "Partition", producePartition),
  h("label", {}, "Headers (key=value per line)", headers), h("label", {}, "Value", value),
  h("div", {}, h("button", { class: "primary", type: "submit" }, "Produce"), " ", produced));

  async function refresh() {
    const now = await get(path, { signal: cx.signal });
    described.partitions = now.partitions;
    partitions.update(now.partitions);
  }
  partitions.update(described.partitions);
  replace(cx.main,
    h("h1", {}, `Topic ${name}`, described.internal ? h("span", { class: "tag" }, "internal") : null),
    h("div", { class: "toolbar" }, h("a", { href: `#/queues/${encodeURIComponent(name)}` }, "Queues & dead letters"),
      described.internal ? null : h("button", { class: "danger", onclick: (e) => act(e.target, async () => {
        if (await deleteTopic(name)) location.hash = "#/topics";
      }) }, "Delete topic")),
    h("section", { class: "panel" }, h("h2", {}, "Partitions"), partitions.el),
    h("section", { class: "panel" }, h("h2", {}, "Messages"), tools, results),
    described.internal ? null : h("section", { class: "panel" }, h("h2", {}, "Produce a test message"), produce),
    h("section", { class: "panel" }, h("h2", {}, "Settings"), config.el));
  await browse();
  cx.every(REFRESH_MS, refresh);
}
