// Sign in: HTTP Basic credentials, checked by asking /v1/whoami with them. brokerd
// accepts a password only over TLS, so on plain HTTP the page says so.

import { ApiError, get, signIn, signOut } from "../api.js";
import { h, replace } from "../ui.js";

export async function render(cx) {
  const back = cx.args.length ? `#${cx.args.join("/")}` : "#/overview";
  const user = h("input", { name: "user", autocomplete: "username", required: true, "aria-label": "User" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, "aria-label": "Password" });
  const message = h("p", { class: "inline-error", role: "alert", "data-testid": "login-error" });
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      signIn(user.value, password.value);
      try {
        await get("/v1/whoami");
        location.hash = back;
        location.reload();
      } catch (err) {
        signOut();
        message.textContent = err instanceof ApiError && err.status === 401
          ? "Sign-in failed: wrong user or password, or the password was sent without TLS."
          : err.message;
      }
    },
  },
  h("label", {}, "User", user),
  h("label", {}, "Password", password),
  h("button", { class: "primary", type: "submit" }, "Sign in"),
  message);
  const plain = location.protocol === "http:"
    ? h("p", { class: "muted" }, "This page came over plain HTTP: brokerd refuses passwords sent without TLS. Turn on TLS for the HTTP listener ([http.tls]) to sign in.")
    : null;
  // Nothing to navigate to before signing in.
  document.body.classList.add("signed-out");
  cx.signal.addEventListener("abort", () => document.body.classList.remove("signed-out"), { once: true });
  replace(cx.main, h("section", { class: "login panel" }, h("h1", {}, "Sign in to brokerd"), plain, form));
  user.focus();
}
