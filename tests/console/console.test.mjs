// End-to-end tests of the web console in headless Chromium, against a real brokerd
// that tests/tests/console.rs started. Each test works through the UI as an
// operator would, changes the broker natively (brokerctl) or over the HTTP API
// where the scenario needs it, and saves a screenshot; a failing test's screenshot
// is kept as FAILED-<test>.png.
//
// Environment (set by console.rs): BROKERD_HTTP (http://host:port), BROKERD_ADDR
// (the native listener), BROKERCTL (its binary), CHROMIUM (the browser),
// SCREENSHOT_DIR (where screenshots go), RESULTS (a JSON file for measurements).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { WAIT_MS, open as openAt, setup } from "./harness.mjs";

const BASE = process.env.BROKERD_HTTP;
const ADDR = process.env.BROKERD_ADDR;
const BROKERCTL = process.env.BROKERCTL;
assert.ok(BASE && ADDR && BROKERCTL, "run through tests/tests/console.rs");
const run = promisify(execFile);
const session = setup();
const SHOTS = session.shots;
const measured = session.measured;
// The current test's page.
let page;
const open = async (hash, name, ready) => {
  page = session.page;
  await openAt(page, BASE, hash, name, ready);
};

async function brokerctl(...args) {
  const { stdout } = await run(BROKERCTL, ["--addr", ADDR, ...args], { timeout: WAIT_MS });
  return stdout;
}

/** brokerctl with standard input. */
function brokerctlWithInput(input, ...args) {
  return new Promise((resolve, reject) => {
    const child = spawn(BROKERCTL, ["--addr", ADDR, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { err += d; });
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`brokerctl ${args.join(" ")}: ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

async function http(method, path, body) {
  const response = await fetch(`${BASE}${path}`, {
    method, headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

test("the overview renders with live rates, and how long it takes is measured", async () => {
  await http("POST", "/v1/topics", { name: "overview-demo", partitions: 2 });
  const started = Date.now();
  await open("/overview", "overview");
  // From navigation start to the page showing its first data, as the page itself
  // noted it.
  measured.overview_render_ms = Number(await page.locator("main").getAttribute("data-rendered-ms"));
  measured.overview_wall_ms = Date.now() - started;
  // The assets the browser fetched for it, by size.
  measured.overview_transfer_bytes = await page.evaluate(() => performance.getEntriesByType("resource")
    .concat(performance.getEntriesByType("navigation")).filter((e) => !e.name.includes("/v1/") && !e.name.includes("/readyz"))
    .reduce((sum, e) => sum + (e.decodedBodySize || 0), 0));
  await assert.doesNotReject(page.waitForSelector('[data-testid="overview-durability"]:text("always")'));
  await page.waitForSelector('#health.ok');
  await page.waitForSelector('main table :text("overview-demo")');
  // Rates come from two readings: produce between them and see it counted.
  await http("POST", "/v1/topics/overview-demo/records", { records: Array.from({ length: 50 }, (_, i) => ({ value: `m${i}` })) });
  await page.waitForFunction(() => /[1-9]/.test(document.querySelector('[data-testid="overview-rates"]').textContent.split("·")[0]));
});

test("a topic created in the UI is listed", async () => {
  await open("/topics", "topics");
  await page.getByLabel("Topic name").fill("created-in-ui");
  await page.getByLabel("Partitions").fill("3");
  await page.getByLabel("Settings").fill("retention_ms=86400000");
  await page.getByRole("button", { name: "Create topic" }).click();
  const row = page.locator("tr", { has: page.getByRole("link", { name: "created-in-ui", exact: true }) });
  await row.waitFor();
  assert.equal((await row.locator("td").nth(1).textContent()).trim(), "3");
  const described = await http("GET", "/v1/topics/created-in-ui");
  assert.equal(described.partitions.length, 3);
  assert.equal(String(described.config.retention_ms), "86400000");
});

test("a message produced natively is browsed with its key, headers and pretty JSON", async () => {
  await brokerctl("topics", "create", "browse-me", "--partitions", "1");
  const line = JSON.stringify({ key: "user-7", headers: [{ key: "origin", value: "native" }, { key: "kind", value: "order" }], value: '{"id":7,"items":["a","b"]}' });
  await brokerctlWithInput(`${line}\n`, "produce", "browse-me", "--input", "json");
  await open("/topics/browse-me", "topic");
  const record = page.getByTestId("record").first();
  await record.waitFor();
  assert.equal((await record.getByTestId("record-key").textContent()).trim(), "user-7");
  const headers = await record.getByTestId("record-headers").textContent();
  assert.match(headers, /origin=native/);
  assert.match(headers, /kind=order/);
  const value = await record.getByTestId("record-value").textContent();
  assert.deepEqual(JSON.parse(value), { id: 7, items: ["a", "b"] });
  assert.match(value, /\n {2}"id": 7/, "pretty-printed");
});

test("a test message produced in the UI can be browsed by time", async () => {
  await http("POST", "/v1/topics", { name: "by-time", partitions: 1 });
  await http("POST", "/v1/topics/by-time/records", { records: [{ value: "old", timestamp_ms: 1_000_000_000_000 }] });
  await open("/topics/by-time", "topic");
  await page.getByLabel("Key", { exact: true }).fill("k1");
  await page.getByLabel("Value", { exact: true }).fill("from the console");
  await page.getByRole("button", { name: "Produce", exact: true }).click();
  await page.getByTestId("produced").filter({ hasText: "offset 1" }).waitFor();
  // From a time after the old record: only the new one.
  await page.getByLabel("From time").fill("2020-01-01T00:00:00");
  await page.getByRole("button", { name: "Go to time" }).click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="record"]').length === 1
    && document.querySelector('[data-testid="record-value"]').textContent === "from the console");
  assert.equal(await page.getByLabel("Offset", { exact: true }).inputValue(), "1");
});

test("a message nacked until dead-lettered is shown with its reasons, and a replay delivers it again", async () => {
  await http("POST", "/v1/topics", { name: "jobs", partitions: 1, config: { max_delivery_attempts: 2, retry_backoff_ms: 10 } });
  await http("POST", "/v1/topics/jobs/records", { records: [{ key: "job-1", value: "do it" }] });
  const receive = () => http("POST", "/v1/topics/jobs/queues/workers/receive?max_messages=1&max_wait_ms=5000");
  for (let attempt = 1; attempt <= 2; attempt += 1) {
    const { messages } = await receive();
    assert.equal(messages.length, 1, `attempt ${attempt} delivered`);
    assert.equal(messages[0].attempt, attempt);
    await http("POST", `/v1/topics/jobs/queues/workers/messages/${messages[0].delivery_id}/nack`, { reason: `failure ${attempt}`, delay_ms: 10 });
  }
  await open("/queues/jobs", "queues");
  const letter = page.getByTestId("dead-letter").first();
  await letter.waitFor();
  assert.equal((await letter.getByTestId("dlq-reason").textContent()).trim(), "failure 2");
  assert.equal((await letter.getByTestId("dlq-attempts").textContent()).trim(), "2");
  assert.match(await letter.textContent(), /not traced/, "no traceparent, so no trace to link");
  await page.locator("tr", { hasText: "workers" }).getByTestId("dead-lettered").filter({ hasText: "1" }).waitFor();
  await page.screenshot({ path: join(SHOTS, "page-dead-letters.png") });

  await page.getByRole("button", { name: "Replay all" }).click();
  await page.locator("#confirm-ok").click();
  await page.getByTestId("dlq-letters").filter({ hasText: "No dead letters." }).waitFor();
  const { messages } = await receive();
  assert.equal(messages.length, 1, "replayed and delivered again");
  assert.equal(messages[0].record.value, "do it");
  assert.equal(messages[0].attempt, 1, "attempts start again");
  await page.locator("tr", { hasText: "workers" }).getByTestId("in-flight").filter({ hasText: "1" }).waitFor();
});

test("a service registered with brokerctl appears, then expires, without a reload", async () => {
  await open("/services", "services");
  await page.getByTestId("watch-state").filter({ hasText: "watching" }).waitFor();
  const child = spawn(BROKERCTL, ["--addr", ADDR, "services", "register", "billing", "--addr", "10.0.0.7:8080",
    "--ttl-ms", "1000", "--id", "billing-1", "--tag", "zone=a"], { stdio: "ignore" });
  try {
    const row = page.locator("table[aria-label='Instances'] tr", { hasText: "billing-1" });
    await row.getByTestId("instance-status").filter({ hasText: "up" }).waitFor();
    assert.match(await row.textContent(), /10\.0\.0\.7:8080/);
    assert.match(await row.textContent(), /zone=a/);
    await page.screenshot({ path: join(SHOTS, "page-services-live.png") });
  } finally {
    // SIGKILL: no deregistration, so the instance expires after its TTL.
    child.kill("SIGKILL");
  }
  const navigations = [];
  page.on("framenavigated", (f) => navigations.push(f.url()));
  await page.locator("table[aria-label='Instances'] tr", { hasText: "billing-1" }).getByTestId("instance-status").filter({ hasText: "expired" }).waitFor();
  assert.deepEqual(navigations, [], "no reload");
  await page.locator("table[aria-label='Recent changes'] tr", { hasText: "expired" }).waitFor();
});

test("a trace opens as a waterfall with its spans in order", async () => {
  await brokerctl("topics", "create", "traced", "--partitions", "1");
  const out = await brokerctlWithInput("hello\n", "produce", "traced", "--trace");
  const traceId = out.match(/[0-9a-f]{32}/)?.[0];
  assert.ok(traceId, `brokerctl printed a trace id: ${out}`);
  // Deliver it twice through a queue: a nack, then an ack.
  const receive = () => http("POST", "/v1/topics/traced/queues/tq/receive?max_messages=1&max_wait_ms=5000");
  const first = (await receive()).messages[0];
  await http("POST", `/v1/topics/traced/queues/tq/messages/${first.delivery_id}/nack`, { reason: "not yet", delay_ms: 10 });
  const second = (await receive()).messages[0];
  await http("DELETE", `/v1/topics/traced/queues/tq/messages/${second.delivery_id}`);

  await open("/traces", "traces");
  await page.getByRole("link", { name: traceId }).click();
  await page.waitForSelector('main[data-page="traces"][data-ready="true"] [data-testid="span"]');
  // Spans arrive asynchronously: wait for the ack, reloading the trace page.
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="span-name"]')].some((e) => e.textContent === "ack"), null, { timeout: 2000 })
    .catch(async () => { await page.reload(); await page.waitForSelector('[data-testid="span-name"]:text("ack")'); });
  await page.screenshot({ path: join(SHOTS, "page-trace.png") });
  const names = await page.getByTestId("span-name").allTextContents();
  let at = -1;
  for (const name of ["produce", "append", "deliver", "nack", "ack"]) {
    const next = names.indexOf(name, at + 1);
    assert.ok(next > at, `${name} after the spans before it in ${names.join(", ")}`);
    at = next;
  }
  assert.equal(names.filter((n) => n === "deliver").length, 2, `one deliver per attempt: ${names.join(", ")}`);
});

test("a topic is deleted only after its name is typed", async () => {
  await http("POST", "/v1/topics", { name: "doomed", partitions: 1 });
  await open("/topics", "topics");
  await page.getByRole("button", { name: "Delete topic doomed" }).click();
  const ok = page.locator("#confirm-ok");
  assert.equal(await ok.isDisabled(), true, "not before the name is typed");
  await page.locator("#confirm-typed").fill("doome");
  assert.equal(await ok.isDisabled(), true);
  await page.locator("#confirm-typed").fill("doomed");
  await ok.click();
  await page.getByRole("link", { name: "doomed", exact: true }).waitFor({ state: "detached" });
  const response = await fetch(`${BASE}/v1/topics/doomed`);
  assert.equal(response.status, 404);
});

test("an API error is shown, not swallowed", async () => {
  await open("/topics", "topics");
  await page.getByLabel("Topic name").fill("bad/name");
  // The browser's own pattern check would stop the form; go around it.
  await page.evaluate(() => document.querySelector('input[name="name"]').removeAttribute("pattern"));
  await page.getByRole("button", { name: "Create topic" }).click();
  await page.getByTestId("error").first().waitFor();
  assert.match(await page.getByTestId("error").first().textContent(), /POST \/v1\/topics/);
  await open("/topics/no-such-topic", "topic", "error");
  assert.match(await page.getByTestId("page-error").textContent(), /no-such-topic/);
});

test("routes are added, tested with a routing key and deleted", async () => {
  await http("POST", "/v1/topics", { name: "orders-eu", partitions: 1 });
  await open("/routes", "routes");
  await page.getByLabel("Pattern", { exact: true }).fill("orders.*.eu");
  await page.getByLabel("Destination topic").fill("orders-eu");
  await page.getByRole("button", { name: "Add rule" }).click();
  await page.locator("tr", { hasText: "orders.*.eu" }).waitFor();
  await page.getByLabel("Routing key to test").fill("orders.created.eu");
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByTestId("route-match").filter({ hasText: "orders-eu" }).waitFor();
  await page.getByLabel("Routing key to test").fill("orders.created.us");
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByTestId("route-no-match").waitFor();
  await page.getByRole("button", { name: /Delete rule/ }).first().click();
  await page.locator("#confirm-ok").click();
  await page.locator("tr", { hasText: "orders.*.eu" }).waitFor({ state: "detached" });
});

test("a consumer group shows members, offsets and lag", async () => {
  await http("POST", "/v1/topics", { name: "lagging", partitions: 2 });
  await http("POST", "/v1/topics/lagging/records", { records: Array.from({ length: 10 }, (_, i) => ({ value: `v${i}`, partition: i % 2 })) });
  await brokerctl("consume", "lagging", "--group", "readers", "--count", "4", "--timeout-ms", "5000");
  await open("/groups/readers", "groups");
  await page.getByTestId("total-lag").filter({ hasText: "6" }).waitFor();
  assert.equal(await page.getByTestId("lag").count(), 2);
  await page.locator("svg.chart path").first().waitFor({ state: "attached" });
});

test("10,000 topics paginate without freezing the page", async () => {
  // Drawn from a large list the way the topics page draws it: one page of rows.
  await open("/topics", "topics");
  const rows = await page.evaluate(async () => {
    const { pagedTable } = await import("/console/js/ui.js");
    const table = pagedTable({ columns: [{ label: "n", value: (r) => r }], rows: Array.from({ length: 10_000 }, (_, i) => `t${i}`) });
    document.body.append(table.el);
    return { drawn: table.el.querySelectorAll("tbody tr").length, status: table.el.querySelector(".pager span").textContent };
  });
  assert.equal(rows.drawn, 50);
  assert.match(rows.status, /1–50 of 10000/);
});

test("the layout works in a narrow window and by keyboard", async () => {
  page = session.page;
  await page.setViewportSize({ width: 420, height: 800 });
  await open("/overview", "overview");
  assert.equal(await page.locator("nav").isVisible(), false, "the nav folds away");
  await page.getByRole("button", { name: "Menu" }).click();
  await page.getByRole("link", { name: "Topics" }).click();
  await page.waitForSelector('main[data-page="topics"][data-ready="true"]');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 420 + 1, `no page-wide horizontal scroll (${width}px)`);
  // Keyboard: Tab from the top reaches the nav, Enter follows a link.
  await page.setViewportSize({ width: 1280, height: 800 });
  await open("/overview", "overview");
  // A fresh load: focus starts at the top of the document.
  await page.reload();
  await page.waitForSelector('main[data-page="overview"][data-ready="true"]');
  await page.keyboard.press("Tab"); // skip link
  const seen = [];
  for (let i = 0; i < 10 && seen[seen.length - 1] !== "Consumer groups"; i += 1) {
    await page.keyboard.press("Tab");
    seen.push(await page.evaluate(() => document.activeElement.textContent.trim()));
  }
  assert.equal(seen[seen.length - 1], "Consumer groups", `focus went ${seen.join(" → ")}`);
  await page.keyboard.press("Enter");
  await page.waitForSelector('main[data-page="groups"][data-ready="true"]');
});

test("every page renders at 1280x800 for the docs", async () => {
  for (const [hash, name] of [["/overview", "overview"], ["/topics", "topics"], ["/topics/browse-me", "topic"],
    ["/groups", "groups"], ["/groups/readers", "groups"], ["/queues", "queues"], ["/services", "services"],
    ["/routes", "routes"], ["/traces", "traces"]]) {
    await open(hash, name);
    await page.waitForTimeout(100);
    await page.screenshot({ path: join(SHOTS, `page-${hash.slice(1).replace(/\//g, "-")}.png`) });
  }
});
