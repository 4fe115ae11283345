// Queues and dead letters: every queue group's in-flight, scheduled retries,
// redeliveries and dead letters; one topic's dead-letter topic browsed a page at a
// time with each letter's reason and delivery history, replayed or purged.

import { del, get, post, query, seg } from "../api.js";
import * as fmt from "../format.js";
import { act, confirmAction, h, link, pagedTable, replace } from "../ui.js";

/** How often the counts are read again, ms. */
const REFRESH_MS = 2000;
/** Queue groups described per refresh at most (one request each). */
const MAX_DESCRIBED = 200;
/** Letters one page shows. */
const LETTERS_PER_PAGE = 25;

const sum = (g, field) => g.partitions.reduce((s, p) => s + (p.queue ? p.queue[field] : 0), 0);

async function describeQueues(cx, topic) {
  const { groups } = await get("/v1/groups", { signal: cx.signal });
  const queues = groups.filter((g) => g.mode === "queue" && (!topic || g.topic === topic));
  const described = await Promise.all(queues.slice(0, MAX_DESCRIBED)
    .map((g) => get(`/v1/groups/${seg(g.group)}`, { signal: cx.signal }).catch(() => null)));
  return { total: queues.length, described: described.filter(Boolean) };
}

function queueTable() {
  return pagedTable({
    label: "Queue groups",
    filter: (g) => `${g.group} ${g.topic}`,
    columns: [
      { label: "Group", value: (g) => link(`/groups/${encodeURIComponent(g.group)}`, g.group) },
      { label: "Topic", value: (g) => link(`/queues/${encodeURIComponent(g.topic)}`, g.topic) },
      { label: "Members", num: true, value: (g) => g.members.length },
      { label: "In flight", num: true, value: (g) => h("span", { "data-testid": "in-flight" }, sum(g, "in_flight")) },
      { label: "Scheduled retries", num: true, value: (g) => h("span", { "data-testid": "waiting-retry" }, sum(g, "waiting_retry")) },
      { label: "Redeliveries", num: true, value: (g) => fmt.count(g.redeliveries ?? 0) },
      { label: "Dead-lettered", num: true, value: (g) => h("span", { "data-testid": "dead-lettered" }, sum(g, "dead_lettered")) },
      { label: "Backlog", num: true, value: (g) => fmt.count(g.partitions.reduce((s, p) => s + p.lag, 0)) },
    ],
    empty: "No queue groups. A queue group appears when a consumer first receives from it.",
  });
}

export async function render(cx) {
  if (cx.args.length) return deadLetters(cx, cx.args[0]);
  const table = queueTable();
  const note = h("p", { class: "muted" });
  replace(cx.main, h("h1", {}, "Queues & dead letters"), h("section", { class: "panel" }, table.el, note));
  await cx.every(REFRESH_MS, async () => {
    const { total, described } = await describeQueues(cx);
    note.textContent = total > MAX_DESCRIBED ? `Counts for the first ${MAX_DESCRIBED} of ${total} queue groups.` : "";
    table.update(described);
  });
}

function history(record) {
  const header = (k) => record.headers.find((hd) => hd.key === k)?.value;
  return {
    group: header("dlq.group"),
    attempts: header("dlq.attempts"),
    reason: header("dlq.reason"),
    partition: header("dlq.original_partition"),
    offset: header("dlq.original_offset"),
    first: header("dlq.first_delivery_ms"),
    last: header("dlq.last_delivery_ms"),
    // W3C traceparent "00-<trace id>-<span id>-<flags>": a traced message's trace
    // holds every attempt, with each nack's reason.
    trace: /^[0-9a-f]{2}-([0-9a-f]{32})-/.exec(header("traceparent") || "")?.[1],
  };
}

async function deadLetters(cx, topic) {
  const base = `/v1/topics/${seg(topic)}/dlq`;
  const queues = queueTable();
  const summary = h("p", { "data-testid": "dlq-summary" });
  const letters = h("div", { "data-testid": "dlq-letters" });
  const where = h("span", { class: "muted" });
  let page = { from: 0, start: 0, next: 0, end: 0, dlq: null };

  async function showLetters(from) {
    const info = await get(`${base}${query({ limit: 1 })}`, { signal: cx.signal });
    page.dlq = info.dead_letter_topic;
    summary.textContent = `${fmt.count(info.total)} dead letter${info.total === 1 ? "" : "s"} in ${info.dead_letter_topic}`;
    if (info.total === 0) {
      replace(letters, h("p", { class: "muted" }, "No dead letters."));
      where.textContent = "";
      return;
    }
    const described = await get(`/v1/topics/${seg(info.dead_letter_topic)}`, { signal: cx.signal });
    const p0 = described.partitions[0];
    const start = Math.max(p0.start_offset, from ?? p0.start_offset);
    const fetched = await get(`/v1/topics/${seg(info.dead_letter_topic)}/partitions/0/records${query({ offset: start, max_records: LETTERS_PER_PAGE })}`, { signal: cx.signal });
    page = { ...page, from: start, start: fetched.log_start_offset, next: fetched.next_offset, end: fetched.high_watermark };
    where.textContent = `letters at offsets ${start}–${Math.max(start, fetched.next_offset - 1)} of ${fetched.log_start_offset}–${fetched.high_watermark}`;
    replace(letters, h("table", { "aria-label": "Dead letters" },
      h("thead", {}, h("tr", {}, ["DLQ offset", "From", "Group", "Attempts", "Reason", "First delivered", "Last delivered", "Trace", "Key", "Value"]
        .map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, fetched.records.map((r) => {
        const hist = history(r);
        return h("tr", { "data-testid": "dead-letter" },
          h("td", { class: "num mono" }, r.offset),
          h("td", { class: "mono" }, `${topic}/${hist.partition ?? "?"} @${hist.offset ?? "?"}`),
          h("td", {}, hist.group ?? "–"),
          h("td", { class: "num", "data-testid": "dlq-attempts" }, hist.attempts ?? "–"),
          h("td", { "data-testid": "dlq-reason" }, hist.reason || h("span", { class: "muted" }, "(none given)")),
          h("td", { class: "mono" }, fmt.time(hist.first)),
          h("td", { class: "mono" }, fmt.time(hist.last)),
          h("td", {}, hist.trace ? link(`/traces/${hist.trace}`, "every attempt") : h("span", { class: "muted" }, "not traced")),
          h("td", { class: "mono" }, fmt.key(r)),
          h("td", {}, h("pre", {}, fmt.value(r).text)));
      }))));
  }

  const replay = h("button", { class: "primary", onclick: (e) => act(e.target, async () => {
    if (!(await confirmAction(`Replay every dead letter of ${topic} to its original partition? Their attempts start again.`))) return;
    const done = await post(`${base}/replay`);
    summary.textContent = `replayed ${done.count}`;
    await showLetters();
  }) }, "Replay all");
  const purge = h("button", { class: "danger", onclick: (e) => act(e.target, async () => {
    if (!(await confirmAction(`Purge every dead letter of ${topic}? They are deleted for good.`, topic))) return;
    await del(base);
    await showLetters();
  }) }, "Purge");
  replace(cx.main, h("h1", {}, `Queues & dead letters of ${topic}`),
    h("section", { class: "panel" }, h("h2", {}, "Queue groups"), queues.el),
    h("section", { class: "panel" }, h("h2", {}, "Dead letters"), summary,
      h("div", { class: "toolbar" }, replay, purge,
        h("button", { "aria-label": "Older letters", onclick: (e) => act(e.target, () => showLetters(Math.max(page.start, page.from - LETTERS_PER_PAGE))) }, "‹ Older"),
        h("button", { "aria-label": "Newer letters", onclick: (e) => act(e.target, () => showLetters(page.next)) }, "Newer ›"),
        h("button", { onclick: (e) => act(e.target, () => showLetters()) }, "Refresh"), where),
      letters));
  // Counts and the page of letters on show both follow the broker, so a message
  // dead-lettered meanwhile appears without a reload.
  await cx.every(REFRESH_MS, async () => {
    queues.update((await describeQueues(cx, topic)).described);
    await showLetters(page.dlq ? page.from : undefined);
  });
}
