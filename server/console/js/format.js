// Numbers, sizes, times and record contents as people read them.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function bytes(n) {
  let value = Number(n) || 0;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

export const count = (n) => (Number(n) || 0).toLocaleString("en-US");

export function rate(perSec) {
  const n = Number(perSec) || 0;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M/s`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k/s`;
  return `${n.toFixed(n < 10 && n % 1 ? 1 : 0)}/s`;
}

/** A timestamp (ms since the epoch) as local date and time to the millisecond. */
export function time(ms) {
  if (ms === null || ms === undefined) return "–";
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  const pad = (v, w = 2) => String(v).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A duration in ms, short. */
export function duration(ms) {
  const n = Number(ms) || 0;
  if (n < 1000) return `${n} ms`;
  const s = Math.floor(n / 1000);
  if (s < 60) return `${(n / 1000).toFixed(1)} s`;
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${hr}h ${m}m` : hr ? `${hr}h ${m}m` : `${m}m ${s % 60}s`;
}

/** Microseconds, short. */
export function micros(us) {
  const n = Number(us) || 0;
  return n >= 1000 ? `${(n / 1000).toFixed(n >= 10000 ? 0 : 2)} ms` : `${n} µs`;
}

/** base64 bytes as spaced hex, at most `limit` bytes shown. */
export function hex(base64, limit = 256) {
  let binary;
  try { binary = atob(base64); } catch { return base64; }
  const shown = [];
  for (let i = 0; i < Math.min(binary.length, limit); i += 1) shown.push(binary.charCodeAt(i).toString(16).padStart(2, "0"));
  return shown.join(" ") + (binary.length > limit ? ` … (${binary.length} bytes)` : "");
}

/** A fetched record's value: JSON pretty-printed, text as text, bytes as hex. */
export function value(record) {
  if (record.value_base64 === null || record.value_base64 === undefined) return { kind: "none", text: "(no value)" };
  if (record.value === null || record.value === undefined) return { kind: "binary", text: hex(record.value_base64) };
  if (typeof record.value !== "string") return { kind: "json", text: JSON.stringify(record.value, null, 2) };
  return { kind: "text", text: record.value };
}

/** A record key: text, hex, or a dash. */
export function key(record) {
  if (record.key_base64 === null || record.key_base64 === undefined) return "–";
  return record.key !== null && record.key !== undefined ? record.key : hex(record.key_base64, 64);
}

/** A header value: text or hex. */
export const headerValue = (header) => (header.value !== null && header.value !== undefined ? header.value : hex(header.value_base64, 64));
