// Entry point: sign-in, the layout and a small hash router (#/room/ID, #/search, #/admin…).

import * as api from "./api.js";
import * as live from "./socket.js";
import { h, clear, status, errorText } from "./dom.js";
import * as rooms from "./rooms.js";
import * as room from "./room.js";
import * as search from "./search.js";
import * as admin from "./admin.js";
import * as health from "./health.js";
import * as people from "./people.js";

const $ = (id) => document.getElementById(id);
let cleanup = null;

function route() {
  const [path, qs] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(qs || "") };
}

async function show() {
  if (!api.jwt()) return;
  if (cleanup) cleanup();
  cleanup = null;
  const main = clear($("main"));
  delete main.dataset.ready; // each view sets it once it has drawn (the tests wait for it)
  const { parts, params } = route();
  const section = parts[0] || "rooms";
  document.body.dataset.section = section;
  document.querySelectorAll("[data-nav]").forEach((a) => {
    const current = a.dataset.nav === section || (a.dataset.nav === "rooms" && section === "room");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  rooms.select(section === "room" ? parts[1] : null);
  try {
    if (section === "room" && parts[1]) cleanup = await room.render(main, parts[1], Number(parts[2]) || null);
    else if (section === "search") cleanup = await search.render(main, params);
    else if (section === "admin") cleanup = await admin.render(main, parts[1] || "agents");
    else if (section === "health") cleanup = await health.render(main);
    else main.append(h("div", { className: "empty" }, h("h1", {}, "Rooms"), h("p", {}, "Pick a room on the left, or search.")));
  } catch (err) {
    status(main, errorText(err), "error");
  }
}

function signedIn(session) {
  $("signin").hidden = Boolean(session);
  $("top").hidden = !session;
  $("layout").hidden = !session;
  if (!session) {
    live.disconnect();
    people.forget();
    if (cleanup) cleanup();
    cleanup = null;
    clear($("main"));
    clear($("sidebar"));
    $("token").value = "";
    $("token").focus();
    return;
  }
  const agent = session.agent;
  $("whoami").textContent = `${agent.displayName} (${agent.name}${agent.role === "admin" ? ", admin" : ""})`;
  $("nav-admin").hidden = agent.role !== "admin";
  live.refreshed(session.token);
}

let started = false;
async function start() {
  signedIn(api.jwt() ? { agent: api.me(), token: api.jwt() } : null);
  if (!api.jwt() || started) return;
  started = true;
  live.connect();
  await rooms.render($("sidebar"));
  await show();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.target.querySelector("button");
  button.disabled = true;
  status($("signin-status"), "Signing in…");
  try {
    await api.signIn($("token").value);
    $("token").value = "";
    status($("signin-status"), "");
    await start();
  } catch (err) {
    status($("signin-status"), err.status === 401 ? "That token was not accepted." : errorText(err), "error");
  } finally {
    button.disabled = false;
  }
});

$("sign-out").addEventListener("click", () => {
  api.signOut();
  location.hash = "#/";
});

api.onSession((session) => {
  if (!session) {
    started = false;
    signedIn(null);
  } else signedIn(session);
});

live.on("status", (s) => {
  $("live").textContent = s === "online" ? "● live" : s === "ended" ? "session ended" : "○ reconnecting";
  $("live").dataset.state = s;
});

window.addEventListener("hashchange", show);
start();
