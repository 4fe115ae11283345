// The console with security on, over HTTPS (tests/tests/console.rs starts brokerd
// with SCRAM users, TLS and an admin; `viewer` may describe and read the topic
// `visible` only): a login page first, a refused password says so, and a principal
// sees only the pages and topics its ACLs allow.
//
// Environment: BROKERD_HTTPS (https://host:port), ADMIN_PASSWORD, VIEWER_PASSWORD,
// CHROMIUM, SCREENSHOT_DIR, RESULTS.

import { test } from "node:test";
import assert from "node:assert/strict";
import { open, setup } from "./harness.mjs";

const BASE = process.env.BROKERD_HTTPS;
assert.ok(BASE, "run through tests/tests/console.rs");
const session = setup({ https: true });

async function signIn(page, user, password) {
  await page.goto(`${BASE}/`);
  await page.waitForSelector('main[data-page="login"][data-ready="true"]');
  await page.getByLabel("User").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

test("without credentials the console asks for them, and a wrong password is refused", async () => {
  const { page } = session;
  await signIn(page, "admin", "not the password");
  await page.getByTestId("login-error").filter({ hasText: "Sign-in failed" }).waitFor();
  assert.equal(await page.locator("main").getAttribute("data-page"), "login");
});

test("the admin signs in and sees every page", async () => {
  const { page } = session;
  await signIn(page, "admin", process.env.ADMIN_PASSWORD);
  await page.waitForSelector('main[data-page="overview"][data-ready="true"]');
  await page.getByTestId("principal").filter({ hasText: "admin" }).waitFor();
  for (const name of ["Overview", "Topics", "Consumer groups", "Services", "Routes", "Traces"]) {
    assert.equal(await page.getByRole("link", { name, exact: true }).isVisible(), true, `${name} shown`);
  }
  await open(page, BASE, "/topics", "topics");
  await page.getByRole("link", { name: "secret", exact: true }).waitFor();
});

test("a viewer sees only what its ACLs allow", async () => {
  const { page } = session;
  await signIn(page, "viewer", process.env.VIEWER_PASSWORD);
  await page.getByTestId("principal").filter({ hasText: "viewer" }).waitFor();
  // It may not describe the cluster (the overview's statistics) or read traces:
  // those pages are hidden, and it lands on the first page it may read. Lists are
  // filtered: topics are listed, but only its own.
  await page.waitForSelector('main[data-page="topics"][data-ready="true"]');
  for (const name of ["Overview", "Traces"]) {
    assert.equal(await page.getByRole("link", { name, exact: true }).isVisible(), false, `${name} hidden`);
  }
  assert.equal(await page.getByRole("link", { name: "Topics", exact: true }).isVisible(), true);
  await open(page, BASE, "/topics", "topics");
  await page.getByRole("link", { name: "visible", exact: true }).waitFor();
  assert.equal(await page.getByRole("link", { name: "secret", exact: true }).count(), 0);
  // And what it may not do is refused with the broker's reason, shown.
  await page.getByLabel("Topic name").fill("not-allowed");
  await page.getByRole("button", { name: "Create topic" }).click();
  await page.getByTestId("error").filter({ hasText: /not (allowed|authorized|permitted)|denied|authoriz/i }).first().waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForSelector('main[data-page="login"]');
});
