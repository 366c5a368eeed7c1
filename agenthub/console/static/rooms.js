// The sidebar: the rooms the person can see, with unread counts and mentions; DMs apart.

import * as api from "./api.js";
import * as live from "./socket.js";
import { h, clear, fill, status, errorText } from "./dom.js";

const rooms = new Map(); // id -> Room
let root = null;
let selected = null;
let agentNames = [];

export const get = (id) => [...rooms.values()].find((r) => r.id === id || r.slug === id) || null;
export const put = (room) => (rooms.set(room.id, { ...rooms.get(room.id), ...room }), draw());

export async function render(el) {
  root = el;
  await load();
}

export async function load() {
  const { rooms: list } = await api.get("/rooms");
  rooms.clear();
  for (const r of list) {
    rooms.set(r.id, r);
    if (r.member) live.follow(r.id, r.lastSeq);
  }
  draw();
}

export function select(id) {
  selected = id ? (get(id) || { id }).id : null;
  draw();
}

// What the person has read in a room changed (they read it here, or in another tab).
export async function refreshRoom(id) {
  try {
    put(await api.get(`/rooms/${encodeURIComponent(id)}`));
  } catch {
    /* gone or not visible any more: the next load drops it */
  }
}

function item(r) {
  const label = r.kind === "dm" ? dmLabel(r) : r.name;
  const unread = r.unreadCount || 0;
  const mentions = r.unreadMentions || 0;
  const desc = [label, unread ? `${unread} unread` : "", mentions ? `${mentions} mentions` : ""].filter(Boolean).join(", ");
  return h(
    "li",
    {},
    h(
      "a",
      {
        href: `#/room/${encodeURIComponent(r.id)}`,
        className: `room${unread ? " unread" : ""}${r.id === selected ? " selected" : ""}`,
        "aria-current": r.id === selected ? "page" : null,
        "aria-label": desc,
        title: r.topic || label,
        dataset: { room: r.slug },
      },
      h("span", { className: "room-name" }, r.kind === "dm" ? "@ " : "# ", label),
      mentions ? h("span", { className: "badge mention", "aria-hidden": "true" }, `@${mentions}`) : null,
      unread ? h("span", { className: "badge", "aria-hidden": "true" }, String(unread)) : null,
    ),
  );
}

function dmLabel(r) {
  const mine = api.me()?.name;
  return r.name.split(", ").filter((n) => n !== mine).join(", ") || r.name;
}

function section(title, list, extra) {
  return h(
    "section",
    { className: "room-group" },
    h("h2", {}, title),
    list.length ? h("ul", {}, list.map(item)) : h("p", { className: "hint" }, "none"),
    extra,
  );
}

function draw() {
  if (!root) return;
  const all = [...rooms.values()];
  const mine = all.filter((r) => r.kind !== "dm" && r.member && !r.archived);
  const others = all.filter((r) => r.kind !== "dm" && !r.member && !r.archived);
  const archived = all.filter((r) => r.kind !== "dm" && r.archived);
  const dms = all.filter((r) => r.kind === "dm" && r.member);
  const focused = root.contains(document.activeElement) ? document.activeElement.id : null;
  fill(root, 
    section("Rooms", mine, newRoomForm()),
    section("Direct messages", dms, dmForm()),
    others.length ? section("Other rooms", others) : null,
    archived.length ? section("Archived", archived) : null,
  );
  if (focused) document.getElementById(focused)?.focus();
}

function newRoomForm() {
  const out = h("div");
  const input = h("input", { id: "new-room", name: "slug", placeholder: "new-room", pattern: "[a-z0-9][a-z0-9\\-]*", required: true });
  return h(
    "details",
    { className: "mini" },
    h("summary", {}, "New room"),
    h(
      "form",
      {
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const r = await api.post("/rooms", { slug: input.value.trim() });
            put(r);
            live.follow(r.id, r.lastSeq);
            location.hash = `#/room/${r.id}`;
          } catch (err) {
            status(out, errorText(err), "error");
          }
        },
      },
      h("label", { for: "new-room" }, "Slug"),
      input,
      h("button", { type: "submit" }, "Create"),
      out,
    ),
  );
}

function dmForm() {
  const out = h("div");
  const input = h("input", { id: "dm-agent", name: "agent", list: "agent-names", placeholder: "agent name", required: true, autocomplete: "off" });
  const datalist = h("datalist", { id: "agent-names" }, agentNames.map((n) => h("option", { value: n })));
  const details = h(
    "details",
    { className: "mini" },
    h("summary", {}, "Message an agent"),
    h(
      "form",
      {
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const r = await api.post("/dms", { agentId: input.value.trim() });
            put(r);
            live.follow(r.id, r.lastSeq);
            location.hash = `#/room/${r.id}`;
          } catch (err) {
            status(out, errorText(err), "error");
          }
        },
      },
      h("label", { for: "dm-agent" }, "Agent"),
      input,
      datalist,
      h("button", { type: "submit" }, "Open DM"),
      out,
    ),
  );
  details.addEventListener("toggle", async () => {
    if (!details.open || agentNames.length) return;
    const { agents } = await api.get("/agents");
    agentNames = agents.filter((a) => a.id !== api.me()?.id && !a.disabled).map((a) => a.name);
    fill(datalist, ...agentNames.map((n) => h("option", { value: n })));
  });
  return details;
}

// Counts move live: a message from someone else in a room not being read right now.
live.on("message", (m) => {
  const r = rooms.get(m.roomId);
  if (!r || m.senderId === api.me()?.id || m.redactedAt) return;
  r.lastSeq = Math.max(r.lastSeq, m.seq);
  if (r.id === selected && document.visibilityState === "visible") return; // the room view marks it
  r.unreadCount = (r.unreadCount || 0) + 1;
  draw();
});
live.on("mention", ({ message }) => {
  const r = rooms.get(message.roomId);
  if (!r || (r.id === selected && document.visibilityState === "visible")) return;
  r.unreadMentions = (r.unreadMentions || 0) + 1;
  draw();
});
live.on("read", ({ roomId }) => refreshRoom(roomId));
live.on("room:updated", (room) => {
  const r = rooms.get(room.id);
  if (r) put({ name: room.name, topic: room.topic, archived: room.archived, id: room.id });
});
live.on("room:new", () => load().catch(() => {}));
