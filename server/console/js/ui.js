// DOM helpers shared by the pages: element building, tables that paginate, the
// confirmation dialog and error reporting. Nothing here calls the API.

/** Builds an element: h("td", {class: "num"}, "42"). Attributes starting with "on"
 * are listeners, `style` is an object of CSS properties; children may be strings,
 * nodes, arrays, null or false. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (k === "style") Object.assign(el.style, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Longest any error stays on screen; at most this many are shown at once. */
const ERROR_SHOWN_MS = 15_000;
const MAX_ERRORS_SHOWN = 4;

/** Shows an error in the corner (and in the console's log), never swallowed. */
export function showError(error) {
  if (error && error.name === "AbortError") return;
  const box = document.getElementById("errors");
  const message = error && error.message ? error.message : String(error);
  const close = h("button", { "aria-label": "Dismiss", onclick: () => item.remove() }, "×");
  const item = h("div", { class: "error", "data-testid": "error" }, h("span", {}, message), close);
  box.append(item);
  while (box.children.length > MAX_ERRORS_SHOWN) box.firstElementChild.remove();
  setTimeout(() => item.remove(), ERROR_SHOWN_MS);
  console.error(message);
}

/** Runs an action from a button: disables it meanwhile, reports a failure. */
export async function act(button, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Asks before something that cannot be undone; with `word`, the user must type
 * it. Resolves true only on confirmation. */
export function confirmAction(text, word) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  const typedLabel = document.getElementById("confirm-typed-label");
  const typed = document.getElementById("confirm-typed");
  const ok = document.getElementById("confirm-ok");
  typed.value = "";
  typedLabel.hidden = !word;
  document.getElementById("confirm-word").textContent = word || "";
  ok.disabled = Boolean(word);
  typed.oninput = () => { ok.disabled = typed.value !== word; };
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (word ? typed : ok).focus();
  });
}

/** Rows one table page shows unless told. */
export const PAGE_ROWS = 50;

/**
 * A table that shows `rows` a page at a time, so 10,000 rows cost one page of DOM.
 * columns: [{label, num?, value(row) -> node | string}]. `update(rows)` keeps the
 * page the reader is on (clamped). `filter` adds a search box over `text(row)`.
 */
export function pagedTable({ columns, rows = [], pageRows = PAGE_ROWS, empty = "Nothing here.", filter, label }) {
  let all = rows;
  let page = 0;
  let needle = "";
  const body = h("tbody");
  const status = h("span", { "aria-live": "polite" });
  const prev = h("button", { onclick: () => { page -= 1; draw(); }, "aria-label": "Previous page" }, "‹ Prev");
  const next = h("button", { onclick: () => { page += 1; draw(); }, "aria-label": "Next page" }, "Next ›");
  const search = filter
    ? h("input", { type: "search", placeholder: "Filter…", "aria-label": `Filter ${label || "rows"}`,
        oninput: (e) => { needle = e.target.value.toLowerCase(); page = 0; draw(); } })
    : null;
  const table = h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null, scope: "col" }, c.label)))),
    body);
  const el = h("div", { class: "paged" }, search, table, h("div", { class: "pager" }, prev, next, status));
  function shown() {
    return needle ? all.filter((r) => filter(r).toLowerCase().includes(needle)) : all;
  }
  function draw() {
    const rowsShown = shown();
    const pages = Math.max(1, Math.ceil(rowsShown.length / pageRows));
    page = Math.min(Math.max(page, 0), pages - 1);
    const slice = rowsShown.slice(page * pageRows, (page + 1) * pageRows);
    replace(body, slice.length ? slice.map((row) => h("tr", {},
      columns.map((c) => h("td", { class: c.num ? "num" : null }, c.value(row)))))
      : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty)));
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    status.textContent = rowsShown.length > pageRows
      ? `${page * pageRows + 1}–${page * pageRows + slice.length} of ${rowsShown.length}`
      : `${rowsShown.length} row${rowsShown.length === 1 ? "" : "s"}`;
  }
  draw();
  return { el, update(rows) { all = rows; draw(); } };
}

/** A labelled figure for the overview's cards. */
export function card(label, value, testid) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label),
    h("div", { class: "value", "data-testid": testid }, value));
}

/** A link inside the console. */
export function link(hash, text) {
  return h("a", { href: `#${hash}` }, text);
}
