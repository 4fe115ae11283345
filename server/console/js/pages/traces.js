// Traces: recently traced messages, and one trace as a waterfall of its spans
// (produce, append, durable, route, deliver per attempt, nack, retry, dead letter)
// on one time axis.

import { get, query, seg } from "../api.js";
import * as fmt from "../format.js";
import { act, h, link, pagedTable, replace } from "../ui.js";

/** Traces listed at most (the API's own cap applies too). */
const LIST_LIMIT = 1000;
const REFRESH_MS = 5000;
/** Spans that mean something went wrong, and ones that mean a retry. */
const BAD = new Set(["dead-letter", "nack"]);
const WARN = new Set(["retry", "expire"]);

export async function render(cx) {
  if (cx.args.length) return trace(cx, cx.args[0]);
  const topic = h("input", { "aria-label": "Topic filter", placeholder: "all topics" });
  const table = pagedTable({
    label: "Traces",
    columns: [
      { label: "Trace", value: (t) => link(`/traces/${t.trace_id}`, h("code", {}, t.trace_id)) },
      { label: "Topic", value: (t) => t.topic },
      { label: "Started", value: (t) => fmt.time(Math.floor(t.start_us / 1000)) },
      { label: "Spans", num: true, value: (t) => t.spans },
      { label: "Latest", value: (t) => h("span", { class: BAD.has(t.last) ? "status-bad" : null }, t.last) },
    ],
    empty: "No traced messages yet. A message is traced when it carries a traceparent header.",
  });
  const refresh = async () => {
    const list = await get(`/v1/traces${query({ limit: LIST_LIMIT, topic: topic.value.trim() || undefined })}`, { signal: cx.signal });
    table.update(list.traces);
  };
  replace(cx.main, h("h1", {}, "Traces"),
    h("section", { class: "panel" }, h("div", { class: "toolbar" }, h("label", {}, "Topic", topic),
      h("button", { onclick: (e) => act(e.target, refresh) }, "Filter")), table.el));
  await cx.every(REFRESH_MS, refresh);
}

/** The tree's spans in display order: each parent before its children, siblings by
 * start, with their depth. */
export function flatten(nodes, depth = 0, out = []) {
  for (const node of [...nodes].sort((a, b) => a.start_us - b.start_us)) {
    out.push({ node, depth });
    flatten(node.children || [], depth + 1, out);
  }
  return out;
}

async function trace(cx, id) {
  const tree = await get(`/v1/traces/${seg(id)}`, { signal: cx.signal });
  const rows = flatten(tree.spans);
  const first = Math.min(...rows.map((r) => r.node.start_us));
  const end = Math.max(...rows.map((r) => r.node.start_us + r.node.duration_us));
  const total = Math.max(1, end - first);
  const attrs = (node) => node.attributes.map((a) => `${a.key}=${a.value}`).join(" ");
  replace(cx.main, h("h1", {}, "Trace ", h("code", {}, tree.trace_id)),
    h("p", { class: "muted" }, `${tree.span_count} spans over ${fmt.micros(total)}, from ${fmt.time(Math.floor(first / 1000))}`),
    h("section", { class: "panel waterfall", "aria-label": "Waterfall" }, rows.map(({ node, depth }) => {
      const left = ((node.start_us - first) / total) * 100;
      const width = Math.max(0.3, (node.duration_us / total) * 100);
      const kind = BAD.has(node.name) ? "bad" : WARN.has(node.name) ? "warn" : "";
      return h("div", { class: "row", "data-testid": "span", dataset: { name: node.name } },
        h("div", { class: "name", style: { paddingLeft: `${depth * 14}px` }, title: attrs(node) },
          h("b", { "data-testid": "span-name" }, node.name), " ", h("span", { class: "muted" }, `+${fmt.micros(node.start_us - first)} · ${fmt.micros(node.duration_us)}`),
          h("div", { class: "muted mono" }, attrs(node))),
        h("div", { class: "track" }, h("div", { class: `span ${kind}`, style: { left: `${left}%`, width: `${width}%` } })));
    })));
}
