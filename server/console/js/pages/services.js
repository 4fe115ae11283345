// Services: registered instances with status and last heartbeat, live. A watch of
// the registry (/v1/registry/watch) applies registrations, expiries and
// deregistrations the moment they happen; a slower poll refreshes heartbeat ages.

import { get, seg } from "../api.js";
import * as fmt from "../format.js";
import { follow } from "../sse.js";
import { h, pagedTable, replace } from "../ui.js";

/** How often instances are read again (heartbeat ages), ms. */
const REFRESH_MS = 3000;
/** How long a gone instance stays listed as expired or deregistered, ms. */
const GONE_SHOWN_MS = 60_000;
/** Registry changes kept in the recent-changes list. */
const MAX_CHANGES = 500;
/** Services whose instances are read per refresh at most (one request each). */
const MAX_SERVICES = 200;

export async function render(cx) {
  // "service/instance" → {service, instance_id, address, tags, ttl_ms, heartbeat_at, status, gone_at}
  const instances = new Map();
  const changes = [];
  const idOf = (service, id) => `${service}/${id}`;
  const table = pagedTable({
    label: "Instances",
    filter: (i) => `${i.service} ${i.instance_id} ${i.address}`,
    columns: [
      { label: "Service", value: (i) => i.service },
      { label: "Instance", value: (i) => h("code", {}, i.instance_id) },
      { label: "Address", value: (i) => h("code", {}, i.address || "–") },
      { label: "Status", value: (i) => h("span", { class: i.status === "up" ? "status-ok" : "status-bad", "data-testid": "instance-status" }, i.status) },
      { label: "Last heartbeat", value: (i) => i.status === "up" ? `${fmt.duration(Math.max(0, Date.now() - i.heartbeat_at))} ago` : `gone ${fmt.time(i.gone_at)}` },
      { label: "TTL", num: true, value: (i) => i.ttl_ms ? fmt.duration(i.ttl_ms) : "–" },
      { label: "Tags", value: (i) => (i.tags || []).map((t) => h("span", { class: "tag" }, `${t.key}=${t.value}`)) },
    ],
    empty: "No instances registered.",
  });
  const changeTable = pagedTable({
    label: "Recent changes", pageRows: 10,
    columns: [
      { label: "When", value: (c) => fmt.time(c.at_ms) },
      { label: "Event", value: (c) => c.event },
      { label: "Service", value: (c) => c.service },
      { label: "Instance", value: (c) => h("code", {}, c.instance_id) },
    ],
    empty: "No changes since this page opened.",
  });
  const live = h("span", { class: "muted", "data-testid": "watch-state" }, "connecting…");
  const draw = () => {
    const now = Date.now();
    for (const [k, i] of instances) if (i.status !== "up" && now - i.gone_at > GONE_SHOWN_MS) instances.delete(k);
    table.update([...instances.values()].sort((a, b) => idOf(a.service, a.instance_id).localeCompare(idOf(b.service, b.instance_id))));
    changeTable.update(changes);
  };
  replace(cx.main, h("h1", {}, "Services"),
    h("section", { class: "panel" }, h("div", { class: "toolbar" }, h("span", {}, "Live: "), live), table.el),
    h("section", { class: "panel" }, h("h2", {}, "Recent changes"), changeTable.el));

  follow("/v1/registry/watch", {
    signal: cx.signal,
    onState: (state, error) => { live.textContent = state === "open" ? "watching" : state === "retrying" ? `reconnecting (${error?.message ?? ""})` : "closed"; },
    onEvent: ({ data }) => {
      if (!data || typeof data !== "object") return;
      changes.unshift(data);
      if (changes.length > MAX_CHANGES) changes.pop();
      const k = idOf(data.service, data.instance_id);
      if (data.event === "registered") {
        instances.set(k, { service: data.service, instance_id: data.instance_id, address: data.address, tags: data.tags, ttl_ms: data.ttl_ms, heartbeat_at: data.at_ms, status: "up" });
      } else {
        const i = instances.get(k) || { service: data.service, instance_id: data.instance_id };
        instances.set(k, { ...i, status: data.event, gone_at: data.at_ms });
      }
      draw();
    },
  });

  await cx.every(REFRESH_MS, async () => {
    const { services } = await get("/v1/services", { signal: cx.signal });
    const described = await Promise.all(services.slice(0, MAX_SERVICES).map(async (s) =>
      [s.service, (await get(`/v1/services/${seg(s.service)}`, { signal: cx.signal })).instances]));
    const now = Date.now();
    const seen = new Set();
    for (const [service, list] of described) {
      for (const i of list) {
        const k = idOf(service, i.instance_id);
        seen.add(k);
        instances.set(k, { service, ...i, heartbeat_at: now - i.since_heartbeat_ms, status: "up" });
      }
    }
    // Up here but gone from the registry: the watch's event may still be on its way.
    for (const [k, i] of instances) if (i.status === "up" && !seen.has(k)) instances.set(k, { ...i, status: "expired", gone_at: now });
    draw();
  });
}
