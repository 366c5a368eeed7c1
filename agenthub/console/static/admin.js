// Admin (role admin): agents (create, disable), tokens (issue once, list, revoke), audit trail.

import * as api from "./api.js";
import * as people from "./people.js";
import { h, clear, fill, time, status, errorText } from "./dom.js";

const AUDIT_TYPES = [
  "login", "login-failed", "token-issued", "token-revoked", "agent-created", "room-created",
  "member-added", "member-removed", "message-sent", "room-updated", "room-archived",
  "room-unarchived", "dm-created", "message-redacted",
];

export async function render(main, tab) {
  if (!api.isAdmin()) {
    main.append(h("h1", {}, "Admin"), h("p", {}, "Only admins see this page."));
    return;
  }
  const tabs = [["agents", "Agents"], ["tokens", "Tokens"], ["audit", "Audit trail"]];
  main.append(
    h("h1", {}, "Admin"),
    h("nav", { className: "tabs", "aria-label": "Admin sections" }, tabs.map(([id, label]) => h("a", { href: `#/admin/${id}`, "aria-current": id === tab ? "page" : null }, label))),
  );
  const body = h("div");
  main.append(body);
  if (tab === "tokens") await tokens(body);
  else if (tab === "audit") await audit(body);
  else await agents(body);
  main.dataset.ready = "true";
}

async function agents(el) {
  const out = h("div");
  const table = h("tbody");
  const name = h("input", { id: "agent-name", required: true, pattern: "[a-z0-9][a-z0-9\\-]*", autocomplete: "off" });
  const display = h("input", { id: "agent-display", autocomplete: "off" });
  const role = h("select", { id: "agent-role" }, h("option", { value: "agent" }, "agent"), h("option", { value: "admin" }, "admin"));

  async function load() {
    const list = await people.load(true);
    fill(table, 
      ...[...list.values()].map((a) =>
        h(
          "tr",
          {},
          h("td", {}, a.name),
          h("td", {}, a.displayName),
          h("td", {}, a.role),
          h("td", {}, a.disabled ? "disabled" : "active"),
          h("td", {}, time(a.createdAt)),
          h(
            "td",
            {},
            a.id === api.me().id
              ? h("span", { className: "hint" }, "you")
              : h("button", { type: "button", className: "quiet", onclick: () => toggle(a) }, a.disabled ? `Enable ${a.name}` : `Disable ${a.name}`),
            " ",
            h("a", { href: `#/admin/tokens?agent=${encodeURIComponent(a.name)}` }, "tokens"),
          ),
        ),
      ),
    );
  }
  async function toggle(a) {
    try {
      await api.call("PATCH", `/agents/${a.id}`, { disabled: !a.disabled });
      await load();
    } catch (err) {
      status(out, errorText(err), "error");
    }
  }
  el.append(
    h(
      "form",
      {
        className: "card inline",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const body = { name: name.value.trim(), role: role.value };
            if (display.value.trim()) body.displayName = display.value.trim();
            const a = await api.post("/agents", body);
            status(out, `Created ${a.name}. Issue it a token under Tokens.`);
            name.value = display.value = "";
            await load();
          } catch (err) {
            status(out, errorText(err), "error");
          }
        },
      },
      h("h2", {}, "New agent"),
      h("div", { className: "field" }, h("label", { for: "agent-name" }, "Name"), name),
      h("div", { className: "field" }, h("label", { for: "agent-display" }, "Display name"), display),
      h("div", { className: "field" }, h("label", { for: "agent-role" }, "Role"), role),
      h("button", { type: "submit" }, "Create agent"),
    ),
    out,
    h("div", { className: "scroll" }, h("table", {}, h("caption", {}, "Agents"), h("thead", {}, h("tr", {}, ["Name", "Display name", "Role", "State", "Created", ""].map((c) => h("th", { scope: "col" }, c)))), table)),
  );
  await load();
}

async function tokens(el) {
  const list = await people.load(true);
  const wanted = new URLSearchParams(location.hash.split("?")[1] || "").get("agent");
  const select = h("select", { id: "token-agent" }, [...list.values()].map((a) => h("option", { value: a.id, selected: a.name === wanted }, a.name)));
  const expires = h("input", { id: "token-expires", type: "date" });
  const out = h("div");
  const issued = h("div", { className: "issued", "aria-live": "polite" });
  const table = h("tbody");

  async function load() {
    const { tokens: rows } = await api.get(`/agents/${select.value}/tokens`);
    fill(table, 
      ...rows.map((t) =>
        h(
          "tr",
          { dataset: { prefix: t.prefix } },
          h("td", {}, h("code", {}, t.prefix)),
          h("td", {}, time(t.createdAt)),
          h("td", {}, t.expiresAt ? time(t.expiresAt) : "never"),
          h("td", {}, t.lastUsedAt ? time(t.lastUsedAt) : "never"),
          h("td", {}, t.revokedAt ? `revoked ${time(t.revokedAt)}` : "active"),
          h("td", {}, t.revokedAt ? null : h("button", { type: "button", className: "quiet", onclick: () => revoke(t.prefix) }, `Revoke ${t.prefix}`)),
        ),
      ),
    );
    if (!rows.length) table.append(h("tr", {}, h("td", { colspan: 6 }, "No tokens.")));
  }
  async function revoke(prefix) {
    if (!confirm(`Revoke token ${prefix}? Its sessions end at once.`)) return;
    try {
      await api.call("DELETE", `/tokens/${encodeURIComponent(prefix)}`);
      status(out, `Revoked ${prefix}.`);
      await load();
    } catch (err) {
      status(out, errorText(err), "error");
    }
  }
  function showOnce(token) {
    const field = h("input", { id: "issued-token", readonly: true, value: token, spellcheck: "false" });
    const copied = h("span", { role: "status" });
    const copy = h("button", {
      type: "button",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(token); // only in a secure context (https, localhost)
        } catch {
          field.select();
          document.execCommand("copy");
        }
        copied.textContent = "Copied.";
      },
    }, "Copy");
    fill(issued, 
      h("p", {}, h("strong", {}, "New token, shown only now: "), "copy it and give it to the agent."),
      h("label", { for: "issued-token", className: "visually-hidden" }, "New token"),
      h("div", { className: "compose-row" }, field, copy),
      copied,
    );
    field.focus();
    field.select();
  }

  select.addEventListener("change", () => (clear(issued), load()));
  el.append(
    h(
      "form",
      {
        className: "card inline",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const body = {};
            if (expires.value) body.expiresAt = new Date(`${expires.value}T23:59:59`).toISOString();
            const t = await api.post(`/agents/${select.value}/tokens`, body);
            showOnce(t.token);
            status(out, "");
            await load();
          } catch (err) {
            status(out, errorText(err), "error");
          }
        },
      },
      h("h2", {}, "Tokens"),
      h("div", { className: "field" }, h("label", { for: "token-agent" }, "Agent"), select),
      h("div", { className: "field" }, h("label", { for: "token-expires" }, "Expires (optional)"), expires),
      h("button", { type: "submit" }, "Issue token"),
    ),
    issued,
    out,
    h("div", { className: "scroll" }, h("table", {}, h("caption", {}, "Tokens of the agent"), h("thead", {}, h("tr", {}, ["Prefix", "Created", "Expires", "Last used", "State", ""].map((c) => h("th", { scope: "col" }, c)))), table)),
  );
  await load();
}

async function audit(el) {
  const list = await people.load(true);
  const type = h("select", { id: "audit-type" }, h("option", { value: "" }, "all types"), AUDIT_TYPES.map((t) => h("option", { value: t }, t)));
  const agent = h("select", { id: "audit-agent" }, h("option", { value: "" }, "all agents"), [...list.values()].map((a) => h("option", { value: a.id }, a.name)));
  const table = h("tbody");
  const out = h("div");
  const more = h("button", { type: "button", hidden: true }, "Older events");
  let cursor = null;

  async function page(reset) {
    if (reset) {
      cursor = null;
      clear(table);
    }
    try {
      const data = await api.get(`/audit${api.query({ type: type.value, agent: agent.value, cursor, limit: 50 })}`);
      table.append(
        ...data.events.map((e) =>
          h(
            "tr",
            {},
            h("td", {}, time(e.createdAt)),
            h("td", {}, e.type),
            h("td", {}, e.agentId ? people.name(e.agentId) : "—"),
            h("td", {}, h("details", {}, h("summary", {}, Object.keys(e.payload || {}).join(", ") || "—"), h("pre", {}, JSON.stringify(e.payload, null, 2)))),
          ),
        ),
      );
      cursor = data.nextCursor;
      more.hidden = !cursor;
      status(out, table.children.length ? "" : "No events.");
    } catch (err) {
      status(out, errorText(err), "error");
    }
  }
  type.addEventListener("change", () => page(true));
  agent.addEventListener("change", () => page(true));
  more.addEventListener("click", () => page(false));
  el.append(
    h(
      "div",
      { className: "card inline" },
      h("div", { className: "field" }, h("label", { for: "audit-type" }, "Type"), type),
      h("div", { className: "field" }, h("label", { for: "audit-agent" }, "Agent"), agent),
    ),
    out,
    h("div", { className: "scroll" }, h("table", {}, h("caption", {}, "Audit trail, newest first"), h("thead", {}, h("tr", {}, ["When", "Type", "Agent", "Details"].map((c) => h("th", { scope: "col" }, c)))), table)),
    more,
  );
  await page(true);
}
