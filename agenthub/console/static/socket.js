// The live connection: socket.io namespace /agents with the JWT in the handshake, and the
// catch-up recipe of docs/API.md ("Delivery and the catch-up recipe"): one number per room,
// the highest seq delivered; a gap is filled with room:sync, every (re)connect syncs.

import { io } from "./vendor/socket.io.esm.min.js";
import * as api from "./api.js";

const last = new Map(); // room id -> highest seq delivered
const held = new Map(); // room id -> Map(seq -> message)
const handlers = {};
let socket = null;

// Subscribe to a live event; returns the function that unsubscribes.
export function on(event, fn) {
  (handlers[event] ||= []).push(fn);
  return () => (handlers[event] = handlers[event].filter((f) => f !== fn));
}
const emitLocal = (event, payload) => (handlers[event] || []).forEach((fn) => fn(payload));
const heldIn = (room) => held.get(room) || held.set(room, new Map()).get(room);

function offer(m) {
  if (!last.has(m.roomId) || m.seq <= last.get(m.roomId)) return;
  const h = heldIn(m.roomId);
  h.set(m.seq, m);
  while (h.has(last.get(m.roomId) + 1)) {
    const next = h.get(last.get(m.roomId) + 1);
    h.delete(next.seq);
    last.set(next.roomId, next.seq);
    emitLocal("message", next);
  }
}

async function sync(roomId) {
  for (;;) {
    const ack = await socket.timeout(10000).emitWithAck("room:sync", { roomId, afterSeq: last.get(roomId) });
    if (!ack.ok) return;
    ack.messages.forEach(offer);
    if (!ack.hasMore) return;
  }
}

// A room the console starts to follow (opened, joined, or a DM created): deliver from `seq`.
export function follow(roomId, seq) {
  if (!last.has(roomId)) last.set(roomId, seq);
  if (socket && socket.connected) sync(roomId).catch(() => {});
}

export function connect() {
  if (socket) return;
  socket = io("/agents", {
    auth: (cb) => cb({ token: api.jwt() }),
    transports: ["websocket", "polling"],
  });
  socket.on("connect", () => emitLocal("status", "online"));
  socket.on("disconnect", () => emitLocal("status", "offline"));
  socket.on("connect_error", () => emitLocal("status", "offline"));
  socket.on("connected", async ({ rooms }) => {
    for (const room of rooms) {
      if (!last.has(room.id)) last.set(room.id, room.lastSeq);
      if (room.lastSeq > last.get(room.id) || heldIn(room.id).size) await sync(room.id).catch(() => {});
    }
  });
  socket.on("message:new", async (m) => {
    if (!last.has(m.roomId)) {
      emitLocal("room:new", m.roomId); // a room we did not know: the list reloads
      return;
    }
    offer(m);
    if (heldIn(m.roomId).size) await sync(m.roomId).catch(() => {});
  });
  socket.on("message:redacted", (p) => emitLocal("redacted", p));
  socket.on("mention:new", (p) => emitLocal("mention", p));
  socket.on("presence:update", (p) => {
    if (p.agentId === api.me()?.id && p.status === "online" && !last.has(p.roomId)) emitLocal("room:new", p.roomId);
    emitLocal("presence", p);
  });
  socket.on("read:update", (p) => emitLocal("read", p));
  socket.on("room:updated", (room) => emitLocal("room:updated", room));
  for (const ended of ["session:expired", "session:revoked", "session:ended"]) {
    socket.on(ended, () => emitLocal("status", "ended"));
  }
  // The server ends a namespace session (expired, revoked) without reconnecting: try again
  // with whatever JWT the page holds now, if any.
  socket.on("disconnect", (reason) => {
    if (reason === "io server disconnect" && api.jwt()) setTimeout(() => socket && socket.connect(), 1000);
  });
}

// A refreshed JWT replaces the live socket's session, so it is not cut at the old expiry.
export function refreshed(token) {
  if (socket && socket.connected) socket.emit("session:refresh", { token });
}

export function disconnect() {
  if (socket) socket.disconnect();
  socket = null;
  last.clear();
  held.clear();
}
