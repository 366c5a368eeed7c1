// Agent names by id, for showing who sent what (GET /agents, once per sign-in).

import * as api from "./api.js";

let agents = null;

export async function load(force = false) {
  if (agents && !force) return agents;
  const { agents: list } = await api.get("/agents");
  agents = new Map(list.map((a) => [a.id, a]));
  return agents;
}

export function name(id) {
  const a = agents && agents.get(id);
  return a ? a.displayName || a.name : `agent ${String(id).slice(0, 8)}`;
}

export function forget() {
  agents = null;
}

// Random ids for clientMsgId: crypto.randomUUID needs a secure context (https), and the
// console is often opened over plain http on a LAN; getRandomValues works everywhere.
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
