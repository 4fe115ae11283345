// What every console test file shares: one headless Chromium per file, a fresh
// browser context and page per test, a screenshot after each test (FAILED-<test>.png
// when it failed or the page threw), and measurements written at the end.

import { after, afterEach, before, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

/** Longest any one wait for the page may take: generous, as CI machines are slow;
 * a wait ends as soon as its condition holds. */
export const WAIT_MS = 20_000;

/** Registers the hooks; `session.page` is the current test's page, `session.measured`
 * what the file measured. */
export function setup({ https = false } = {}) {
  const shots = process.env.SCREENSHOT_DIR;
  assert.ok(shots, "run through tests/tests/console.rs");
  mkdirSync(shots, { recursive: true });
  const session = { page: null, errors: [], measured: {}, shots };
  let browser;
  before(async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      // As root in a sandbox-less container; no background traffic to the closed network.
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  });
  after(async () => {
    await browser?.close();
    if (process.env.RESULTS) writeFileSync(process.env.RESULTS, JSON.stringify(session.measured, null, 2));
  });
  beforeEach(async () => {
    // The test CA is not the browser's: its certificate errors are expected.
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ignoreHTTPSErrors: https });
    context.setDefaultTimeout(WAIT_MS);
    session.page = await context.newPage();
    session.errors = [];
    session.page.on("pageerror", (e) => session.errors.push(e.message));
  });
  afterEach(async (t) => {
    const name = t.name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
    const failed = t.passed === false || session.errors.length > 0;
    try {
      await session.page.screenshot({ path: join(shots, `${failed ? "FAILED-" : ""}${name}.png`), fullPage: true });
    } catch (e) {
      console.error(`no screenshot of ${t.name}: ${e.message}`);
    }
    await session.page.context().close();
    // An uncaught exception in the page fails the test even if its checks passed.
    assert.deepEqual(session.errors, [], "uncaught errors in the page");
  });
  return session;
}

/** Opens a console page at `base` and waits until it has drawn its first data (or,
 * with ready = "error", its error). */
export async function open(page, base, hash, pageName, ready = "true") {
  await page.goto(`${base}/#${hash}`);
  await page.waitForSelector(`main[data-page="${pageName}"][data-ready="${ready}"]`);
}
