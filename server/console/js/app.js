// The console's shell: a hash router over the pages, each page's lifetime (its
// timers and streams end when the reader leaves it), sign-in, the health badge,
// and which pages the principal may open.

import { ApiError, get, signOut } from "./api.js";
import { h, replace, showError } from "./ui.js";

const PAGES = {
  login: () => import("./pages/login.js"),
  overview: () => import("./pages/overview.js"),
  topics: () => import("./pages/topics.js"),
  topic: () => import("./pages/topic.js"),
  groups: () => import("./pages/groups.js"),
  queues: () => import("./pages/queues.js"),
  services: () => import("./pages/services.js"),
  routes: () => import("./pages/routes.js"),
  traces: () => import("./pages/traces.js"),
};

/** What each nav entry needs to be readable: probed when security is on. */
const PROBES = {
  overview: "/v1/stats",
  topics: "/v1/topics",
  groups: "/v1/groups",
  queues: "/v1/groups",
  services: "/v1/services",
  routes: "/v1/routes",
  traces: "/v1/traces?limit=1",
};

/** How often the health badge is refreshed, ms. */
const HEALTH_EVERY_MS = 2000;

let current = null;
let me = null;

/** "#/topics/orders" → {page: "topic", args: ["orders"]}. */
function parse(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [first = "overview", ...rest] = parts;
  if (first === "topics" && rest.length) return { page: "topic", nav: "topics", args: rest };
  if (PAGES[first]) return { page: first, nav: first, args: rest };
  return { page: "overview", nav: "overview", args: [] };
}

/** The context a page renders in: its element, arguments, and a lifetime. */
function context(main, args) {
  const controller = new AbortController();
  const { signal } = controller;
  return {
    main, args, signal, me,
    stop: () => controller.abort(),
    /** Runs `fn` now and every `ms` until the page is left; a failure is shown once
     * until it changes or the call succeeds again. */
    every(ms, fn) {
      let lastError = null;
      let timer = null;
      const tick = async () => {
        try {
          await fn();
          lastError = null;
        } catch (e) {
          if (signal.aborted) return;
          if (e.message !== lastError) showError(e);
          lastError = e.message;
        }
        if (!signal.aborted) timer = setTimeout(tick, ms);
      };
      signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
      return tick();
    },
  };
}

async function route() {
  const target = parse(location.hash);
  // A page the principal may not read: the first one it may.
  const link = document.querySelector(`nav a[data-page="${target.nav}"]`);
  if (link && link.hidden) {
    const first = document.querySelector("nav a:not([hidden])");
    if (first) {
      location.hash = first.getAttribute("href");
      return;
    }
  }
  if (current) current.stop();
  const main = document.getElementById("main");
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === target.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.getElementById("nav").classList.remove("open");
  const cx = context(main, target.args);
  current = cx;
  // What a test (or a screen reader) waits for: the page has drawn its first data.
  main.dataset.ready = "false";
  main.dataset.page = target.page;
  replace(main, h("p", { class: "muted" }, "Loading…"));
  try {
    const module = await PAGES[target.page]();
    if (cx.signal.aborted) return;
    await module.render(cx);
    if (cx.signal.aborted) return;
    // When the page first showed its data, ms after navigation started (what the
    // browser test reports as the render time).
    main.dataset.renderedMs = String(Math.round(performance.now()));
    main.dataset.ready = "true";
  } catch (e) {
    if (cx.signal.aborted || e.name === "AbortError") return;
    replace(main, h("h1", {}, "Could not show this page"), h("p", { class: "inline-error", "data-testid": "page-error" }, e.message));
    main.dataset.ready = "error";
    if (!(e instanceof ApiError)) console.error(e);
  }
}

async function whoami() {
  try {
    me = await get("/v1/whoami");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      me = null;
      return false;
    }
    throw e;
  }
  const who = document.getElementById("who");
  replace(who, me.security_enabled ? [
    h("span", { "data-testid": "principal" }, me.principal),
    h("button", { onclick: () => { signOut(); location.hash = "#/login"; location.reload(); } },
      me.principal === "ANONYMOUS" ? "Sign in" : "Sign out"),
  ] : h("span", { class: "muted" }, "security off"));
  if (me.security_enabled) await hideForbidden();
  return true;
}

/** Hides the pages whose data the principal may not read. */
async function hideForbidden() {
  await Promise.all(Object.entries(PROBES).map(async ([page, path]) => {
    const link = document.querySelector(`nav a[data-page="${page}"]`);
    try {
      await get(path);
      link.hidden = false;
    } catch (e) {
      link.hidden = e instanceof ApiError && (e.status === 403 || e.status === 401);
    }
  }));
}

async function health() {
  const badge = document.getElementById("health");
  try {
    const response = await fetch("/readyz", { headers: { Accept: "application/json" } });
    const body = await response.json();
    badge.className = `health ${response.ok ? "ok" : "bad"}`;
    badge.textContent = response.ok ? "healthy" : "unhealthy";
    badge.title = body.reasons && body.reasons.length ? body.reasons.join("\n") : "every log is writable";
  } catch (e) {
    badge.className = "health bad";
    badge.textContent = "unreachable";
    badge.title = e.message;
  }
  setTimeout(health, HEALTH_EVERY_MS);
}

async function start() {
  const menu = document.getElementById("menu");
  menu.addEventListener("click", () => {
    const nav = document.getElementById("nav");
    nav.classList.toggle("open");
    menu.setAttribute("aria-expanded", String(nav.classList.contains("open")));
  });
  window.addEventListener("brokerd:unauthorized", () => {
    if (!location.hash.startsWith("#/login")) location.hash = `#/login/${encodeURIComponent(location.hash.slice(1) || "/overview")}`;
  });
  health();
  let signedIn = false;
  try {
    signedIn = await whoami();
  } catch (e) {
    showError(e);
  }
  if (!signedIn && !location.hash.startsWith("#/login")) location.hash = "#/login";
  window.addEventListener("hashchange", route);
  route();
}

start();
