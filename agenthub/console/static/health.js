// Health: /readyz and /healthz, and a few figures from /metrics (when it is open).

import { h, clear, fill } from "./dom.js";

const REFRESH_MS = 10_000;

function metricSum(text, name) {
  let total = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) total = (total || 0) + Number(m[3]);
  }
  return total;
}

export async function render(main) {
  const body = h("dl", { className: "health card" });
  const stamp = h("p", { className: "hint", role: "status" });
  main.append(h("h1", {}, "Health"), body, stamp);
  let previous = null; // {at, messages}

  async function probe() {
    const rows = [];
    const ready = await fetch("/readyz").then((r) => r.json().then((b) => ({ ok: r.ok, b }))).catch(() => null);
    rows.push(["Server", ready ? (ready.ok ? "ready" : "unavailable") : "not answering", ready && ready.ok]);
    rows.push(["Database", ready ? ready.b.checks?.db || "?" : "unknown", ready && ready.b.checks?.db === "ok"]);
    const alive = await fetch("/healthz").then((r) => r.json()).catch(() => null);
    if (alive) rows.push(["Uptime", `${Math.round(alive.uptime / 60)} min`, true]);
    const res = await fetch("/metrics").catch(() => null);
    if (res && res.ok) {
      const text = await res.text();
      const connected = metricSum(text, "agenthub_agents_connected");
      const messages = metricSum(text, "agenthub_messages_total");
      const rooms = metricSum(text, "agenthub_rooms_active");
      rows.push(["Agents connected", connected ?? "?", true]);
      rows.push(["Active rooms", rooms ?? "?", true]);
      const now = Date.now();
      if (previous && messages !== null) {
        const perMin = ((messages - previous.messages) * 60_000) / (now - previous.at);
        rows.push(["Messages/min", perMin.toFixed(1), true]);
      } else rows.push(["Messages/min", "measuring…", true]);
      if (messages !== null) rows.push(["Messages since start", messages, true]);
      previous = { at: now, messages };
    } else {
      rows.push(["Metrics", res && res.status === 401 ? "protected by METRICS_TOKEN" : "unavailable", false]);
    }
    fill(body, 
      ...rows.flatMap(([k, v, ok]) => [h("dt", {}, k), h("dd", { className: ok ? "ok" : "bad" }, String(v))]),
    );
    stamp.textContent = `Checked ${new Date().toLocaleTimeString()}; every ${REFRESH_MS / 1000} s.`;
  }

  await probe();
  const timer = setInterval(probe, REFRESH_MS);
  main.dataset.ready = "true";
  return () => clearInterval(timer);
}
