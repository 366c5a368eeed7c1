// One room: its messages (newest at the bottom, older ones loaded by scrolling up), live
// additions, threads in a pane beside, members and presence, and read marks as the person reads.

import * as api from "./api.js";
import * as live from "./socket.js";
import * as rooms from "./rooms.js";
import * as people from "./people.js";
import { h, clear, fill, linkify, time, status, errorText } from "./dom.js";
import { composer } from "./compose.js";

const PAGE = 50;

function messageView(m, { onThread, inThread = false }) {
  const mine = api.me();
  const mentioned = m.mentionsRoom || (m.mentions || []).includes(mine?.id);
  const el = h("li", {
    className: `msg${mentioned ? " mentioned" : ""}${m.redactedAt ? " redacted" : ""}`,
    id: `${inThread ? "t" : "m"}-${m.seq}`,
    dataset: { seq: m.seq },
    tabindex: "-1",
  });
  const meta = h(
    "div",
    { className: "meta" },
    h("strong", { className: "sender" }, people.name(m.senderId)),
    " ",
    h("time", { datetime: m.createdAt, title: new Date(m.createdAt).toLocaleString() }, time(m.createdAt)),
    " ",
    h("span", { className: "seq" }, `#${m.seq}`),
    m.kind && m.kind !== "text" ? h("span", { className: "kind" }, m.kind) : null,
  );
  el.append(meta);
  if (m.redactedAt) {
    el.append(h("p", { className: "body tombstone" }, "message deleted"));
    return el;
  }
  if (m.body) el.append(h("p", { className: "body" }, linkify(m.body)));
  if (m.data) {
    const keys = Object.keys(m.data);
    el.append(
      h(
        "details",
        { className: "data" },
        h("summary", {}, `data: ${keys.slice(0, 4).join(", ")}${keys.length > 4 ? ", …" : ""}`),
        h("pre", {}, JSON.stringify(m.data, null, 2)),
      ),
    );
  }
  if (!inThread) {
    const replies = m.replyCount || 0;
    el.append(
      h(
        "div",
        { className: "actions" },
        h("button", { type: "button", className: "quiet reply", onclick: () => onThread(m.seq) }, replies ? `${replies} ${replies === 1 ? "reply" : "replies"}` : "Reply"),
      ),
    );
  }
  return el;
}

export async function render(main, roomRef, targetSeq) {
  await people.load();
  let room = await api.get(`/rooms/${encodeURIComponent(roomRef)}`);
  rooms.put(room);
  const roomPath = `/rooms/${encodeURIComponent(room.id)}`;
  const messages = new Map(); // seq -> message, main timeline and threads alike
  let members = [];
  let cursor = null;
  let hasMore = true;
  let loading = false;
  let readUpTo = room.lastReadSeq || 0;
  const firstUnread = room.member && room.unreadCount ? readUpTo + 1 : null;
  let thread = null; // {root, list}
  const subscriptions = [];

  const header = h("header", { className: "room-head" });
  const list = h("ol", { className: "messages", "aria-label": `Messages in ${room.name}`, "aria-live": "polite" });
  const older = h("p", { className: "older hint" });
  const timeline = h("div", { className: "timeline", tabindex: "0" }, older, list);
  const jump = h("button", { type: "button", className: "jump", hidden: true }, "Jump to first unread");
  const pane = h("aside", { className: "thread", hidden: true, "aria-label": "Thread" });
  const foot = h("div", { className: "room-foot" });
  const column = h("section", { className: "room-main" }, header, jump, timeline, foot);
  main.append(h("div", { className: "room" }, column, pane));

  function drawHeader() {
    const online = members.filter((m) => m.online);
    fill(header, 
      h("h1", {}, room.kind === "dm" ? "@ " : "# ", room.name, room.archived ? h("span", { className: "badge muted" }, "archived") : null),
      room.topic ? h("p", { className: "topic" }, room.topic) : null,
      h(
        "details",
        { className: "members" },
        h("summary", {}, `${members.length} members, ${online.length} online`),
        h(
          "ul",
          {},
          members.map((m) =>
            h("li", { className: m.online ? "online" : "offline" }, h("span", { className: "dot", "aria-hidden": "true" }), `${m.displayName} (@${m.name})`, h("span", { className: "visually-hidden" }, m.online ? ", online" : ", offline")),
          ),
        ),
      ),
    );
  }

  function drawFoot() {
    clear(foot);
    if (!room.member) {
      foot.append(
        h("p", {}, "You are not a member of this room. "),
        h("button", { type: "button", onclick: join }, "Join room"),
      );
    } else if (room.archived) {
      foot.append(h("p", { className: "hint" }, "This room is archived: it takes no new messages."));
    } else {
      foot.append(composer({ roomId: room.id, label: `Message ${room.name}`, members: () => members, onSent: add }));
    }
  }

  async function join() {
    try {
      await api.post(`${roomPath}/members`);
      rooms.load();
      location.hash = `#/room/${room.id}`;
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (err) {
      status(foot, errorText(err), "error");
    }
  }

  const nearBottom = () => timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80;

  // Place a message in the main timeline (top-level ones) or the open thread (replies).
  function add(m) {
    const known = messages.get(m.seq);
    messages.set(m.seq, m);
    if (m.threadRoot !== null && m.threadRoot !== undefined) {
      if (!known) bumpReplies(m.threadRoot);
      if (thread && thread.root === m.threadRoot) placeIn(thread.list, m, true);
      return;
    }
    const stick = nearBottom();
    placeIn(list, m, false);
    if (stick) timeline.scrollTop = timeline.scrollHeight;
  }

  function placeIn(ol, m, inThread) {
    const id = `${inThread ? "t" : "m"}-${m.seq}`;
    const el = messageView(m, { onThread: openThread, inThread });
    const existing = ol.querySelector(`#${id}`);
    if (existing) return existing.replaceWith(el);
    const after = [...ol.children].find((c) => Number(c.dataset.seq) > m.seq);
    ol.insertBefore(el, after || null);
    if (!inThread) seen.observe(el);
    if (!inThread && firstUnread && m.seq === firstUnread && !ol.querySelector(".unread-line")) {
      // Its seq sorts it between the last read message and the first unread one.
      const line = h("li", { className: "unread-line", role: "separator", dataset: { seq: m.seq - 0.5 } }, "new");
      ol.insertBefore(line, el);
    }
  }

  function bumpReplies(rootSeq) {
    const root = messages.get(rootSeq);
    if (!root) return;
    root.replyCount = (root.replyCount || 0) + 1;
    placeIn(list, root, false);
  }

  async function loadOlder() {
    if (loading || !hasMore || !room.member) return;
    loading = true;
    older.textContent = "Loading older messages…";
    const before = timeline.scrollHeight;
    try {
      const page = await api.get(`${roomPath}/messages${api.query({ limit: PAGE, cursor })}`);
      page.messages.forEach(add);
      cursor = page.nextCursor;
      hasMore = Boolean(page.hasMore && cursor);
      timeline.scrollTop += timeline.scrollHeight - before;
    } finally {
      loading = false;
      older.textContent = hasMore ? "" : "The beginning of the room.";
    }
  }

  async function reveal(seq) {
    while (hasMore && ![...messages.keys()].some((s) => s <= seq)) await loadOlder();
    const m = messages.get(seq) || (await api.get(`${roomPath}/messages/${seq}`));
    let el;
    if (m.threadRoot) {
      await openThread(m.threadRoot);
      el = pane.querySelector(`#t-${seq}`);
    } else el = list.querySelector(`#m-${seq}`);
    if (!el) return;
    el.scrollIntoView({ block: "center" });
    el.classList.add("target");
    el.focus({ preventScroll: true });
  }

  async function openThread(rootSeq) {
    const tlist = h("ol", { className: "messages", "aria-label": `Thread of #${rootSeq}` });
    thread = { root: rootSeq, list: tlist };
    fill(pane, 
      h("header", {}, h("h2", {}, `Thread #${rootSeq}`), h("button", { type: "button", className: "quiet", "aria-label": "Close thread", onclick: closeThread }, "✕")),
      tlist,
    );
    pane.hidden = false;
    let after = 0;
    for (;;) {
      const page = await api.get(`${roomPath}/messages${api.query({ thread: rootSeq, after, limit: 200 })}`);
      page.messages.forEach((m) => {
        messages.set(m.seq, m);
        placeIn(tlist, m, true);
      });
      if (!page.hasMore || !page.messages.length) break;
      after = page.messages[page.messages.length - 1].seq;
    }
    if (room.member && !room.archived) {
      pane.append(composer({ roomId: room.id, replyTo: rootSeq, label: `Reply to #${rootSeq}`, members: () => members, onSent: add }));
      pane.querySelector("textarea").focus();
    }
  }

  function closeThread() {
    const root = thread && thread.root;
    thread = null;
    pane.hidden = true;
    clear(pane);
    if (root) list.querySelector(`#m-${root} button.reply`)?.focus();
  }

  // Read marks: the newest message seen on screen, sent at most every half second.
  let markTimer = null;
  let seenUpTo = readUpTo;
  const seen = new IntersectionObserver(
    (entries) => {
      for (const e of entries) if (e.isIntersecting) seenUpTo = Math.max(seenUpTo, Number(e.target.dataset.seq));
      scheduleMark();
    },
    { root: timeline, threshold: 0.6 },
  );
  function scheduleMark() {
    if (!room.member || seenUpTo <= readUpTo || markTimer || document.visibilityState !== "visible") return;
    markTimer = setTimeout(async () => {
      markTimer = null;
      const seq = Math.min(seenUpTo, Math.max(...messages.keys(), 0));
      if (seq <= readUpTo) return;
      try {
        const mark = await api.call("PUT", `${roomPath}/read`, { seq });
        readUpTo = mark.lastReadSeq;
        rooms.refreshRoom(room.id);
      } catch {
        /* the next sighting retries */
      }
    }, 500);
  }
  const onVisible = () => scheduleMark();
  document.addEventListener("visibilitychange", onVisible);

  subscriptions.push(
    live.on("message", (m) => m.roomId === room.id && add(m)),
    live.on("redacted", async ({ roomId, seq }) => {
      if (roomId !== room.id) return;
      const m = await api.get(`${roomPath}/messages/${seq}`);
      messages.set(seq, m);
      if (list.querySelector(`#m-${seq}`)) placeIn(list, m, false);
      if (thread && pane.querySelector(`#t-${seq}`)) placeIn(thread.list, m, true);
    }),
    live.on("presence", async ({ roomId, agentId, status: st }) => {
      if (roomId !== room.id) return;
      const member = members.find((m) => m.agentId === agentId);
      if (member) member.online = st === "online";
      else members = (await api.get(`${roomPath}/members`)).members;
      drawHeader();
    }),
    live.on("room:updated", (r) => {
      if (r.id !== room.id) return;
      room = { ...room, name: r.name, topic: r.topic, archived: r.archived };
      drawHeader();
      drawFoot();
    }),
  );

  timeline.addEventListener("scroll", () => {
    if (timeline.scrollTop < 200) loadOlder();
  });
  // Seeing the newest messages moves the read marker past everything before them (one marker
  // per room), so the button stays until the first unread message itself has been shown.
  jump.addEventListener("click", async () => {
    await reveal(firstUnread);
    jump.hidden = true;
  });

  members = room.member || api.isAdmin() ? (await api.get(`${roomPath}/members`)).members : [];
  drawHeader();
  drawFoot();
  if (room.member) {
    live.follow(room.id, room.lastSeq);
    await loadOlder();
    timeline.scrollTop = timeline.scrollHeight;
    if (targetSeq) await reveal(targetSeq);
    else if (firstUnread && !messages.has(firstUnread)) {
      jump.textContent = `Jump to first unread (${room.unreadCount} unread)`;
      jump.hidden = false;
    }
  } else {
    older.textContent = "";
  }
  main.dataset.ready = "true";

  return () => {
    subscriptions.forEach((off) => off());
    seen.disconnect();
    clearTimeout(markTimer);
    document.removeEventListener("visibilitychange", onVisible);
  };
}
