// Routes: the rules, add and delete, and a box that tries a routing key against
// them with the broker's own matcher.

import { del, get, post } from "../api.js";
import { act, confirmAction, h, link, pagedTable, replace } from "../ui.js";

const REFRESH_MS = 3000;

function headerList(text) {
  return text.split(/[\n,]/).map((l) => l.trim()).filter(Boolean).map((pair) => {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`a header is key=value: ${pair}`);
    return { key: pair.slice(0, eq), value: pair.slice(eq + 1) };
  });
}

const tags = (headers) => headers.length ? headers.map((x) => h("span", { class: "tag" }, `${x.key}=${x.value}`)) : h("span", { class: "muted" }, "–");

export async function render(cx) {
  const table = pagedTable({
    label: "Routing rules",
    filter: (r) => `${r.pattern} ${r.topic}`,
    columns: [
      { label: "Id", num: true, value: (r) => r.route_id },
      { label: "Pattern", value: (r) => h("code", {}, r.pattern) },
      { label: "Topic", value: (r) => link(`/topics/${encodeURIComponent(r.topic)}`, r.topic) },
      { label: "Headers", value: (r) => tags(r.headers) },
      { label: "", value: (r) => h("button", { class: "danger", "aria-label": `Delete rule ${r.route_id}`, onclick: (e) => act(e.target, async () => {
        if (!(await confirmAction(`Delete rule ${r.route_id} (${r.pattern} → ${r.topic})?`))) return;
        await del(`/v1/routes/${r.route_id}`);
        await refresh();
      }) }, "Delete") },
    ],
    empty: "No routing rules.",
  });
  const pattern = h("input", { required: true, "aria-label": "Pattern", placeholder: "orders.*.eu" });
  const topic = h("input", { required: true, "aria-label": "Destination topic", placeholder: "orders-eu" });
  const headers = h("input", { "aria-label": "Header matches", placeholder: "region=eu, tier=gold" });
  const add = h("form", { class: "grid", onsubmit: (e) => {
    e.preventDefault();
    act(e.submitter, async () => {
      await post("/v1/routes", { pattern: pattern.value, topic: topic.value, headers: headerList(headers.value) });
      pattern.value = "";
      await refresh();
    });
  } }, h("label", {}, "Pattern (* one word, # any)", pattern), h("label", {}, "Topic", topic),
  h("label", {}, "Headers (key=value, comma-separated)", headers), h("div", {}, h("button", { class: "primary", type: "submit" }, "Add rule")));

  const key = h("input", { required: true, "aria-label": "Routing key to test", placeholder: "orders.created.eu" });
  const probeHeaders = h("input", { "aria-label": "Headers to test", placeholder: "region=eu" });
  const matches = h("div", { "data-testid": "route-matches", role: "status" });
  const probe = h("form", { class: "grid", onsubmit: (e) => {
    e.preventDefault();
    act(e.submitter, async () => {
      const found = await post("/v1/routes/match", { routing_key: key.value, headers: headerList(probeHeaders.value) });
      replace(matches, found.destinations.length
        ? h("table", { "aria-label": "Matching destinations" }, h("thead", {}, h("tr", {}, h("th", {}, "Topic"), h("th", {}, "Rule"), h("th", {}, "Pattern"))),
          h("tbody", {}, found.destinations.map((d) => h("tr", { "data-testid": "route-match" }, h("td", {}, d.topic), h("td", { class: "num" }, d.route_id), h("td", {}, h("code", {}, d.pattern))))))
        : h("p", { class: "muted", "data-testid": "route-no-match" }, `No rule matches ${key.value}: a publish with it would reach no topic.`));
    });
  } }, h("label", {}, "Routing key", key), h("label", {}, "Headers", probeHeaders), h("div", {}, h("button", { type: "submit" }, "Test")));

  async function refresh() {
    table.update((await get("/v1/routes", { signal: cx.signal })).routes);
  }
  replace(cx.main, h("h1", {}, "Routes"),
    h("section", { class: "panel" }, h("h2", {}, "Test a routing key"), probe, matches),
    h("section", { class: "panel" }, h("h2", {}, "Add a rule"), add),
    h("section", { class: "panel" }, h("h2", {}, "Rules"), table.el));
  await cx.every(REFRESH_MS, refresh);
}
