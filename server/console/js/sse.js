// Server-Sent Events over fetch, not EventSource: EventSource cannot send an
// Authorization header. Reconnects after a drop with Last-Event-ID, so a stream
// resumes after the last event it delivered, until its signal is aborted.

import { authorization } from "./api.js";

/** Longest line kept while waiting for its end: a guard against a stream that
 * never sends a newline. */
const MAX_LINE_BYTES = 1 << 20;
/** Waits between reconnects, doubling up to the cap. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;

/**
 * Follows `path`; calls `onEvent({event, id, data})` for each event (data parsed as
 * JSON when it is JSON) and `onState("open" | "retrying" | "closed", error?)`.
 */
export function follow(path, { signal, onEvent, onState = () => {} }) {
  let lastId = null;
  let wait = RETRY_FIRST_MS;
  const run = async () => {
    while (!signal.aborted) {
      try {
        const headers = { Accept: "text/event-stream", "X-Requested-With": "XMLHttpRequest" };
        const auth = authorization();
        if (auth) headers.Authorization = auth;
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await fetch(path, { headers, signal });
        if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
        onState("open");
        wait = RETRY_FIRST_MS;
        await read(response.body, signal, (event) => {
          if (event.id !== null) lastId = event.id;
          onEvent(event);
        });
      } catch (e) {
        if (signal.aborted) break;
        onState("retrying", e);
      }
      if (signal.aborted) break;
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, RETRY_MAX_MS);
    }
    onState("closed");
  };
  run();
}

async function read(body, signal, deliver) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = { event: "message", id: null, data: [] };
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        if (event.data.length) {
          const text = event.data.join("\n");
          let data = text;
          try { data = JSON.parse(text); } catch { /* not JSON: the text */ }
          deliver({ event: event.event, id: event.id, data });
        }
        event = { event: "message", id: event.id, data: [] };
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data.push(val);
        else if (field === "event") event.event = val;
        else if (field === "id") event.id = val;
      }
    }
    if (buffer.length > MAX_LINE_BYTES) throw new Error("an event line over 1 MiB");
  }
}
