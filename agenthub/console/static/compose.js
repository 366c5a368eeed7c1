// The composer: a textarea that sends on Enter (Shift+Enter: a new line) and completes
// @mentions from the room's member names (a combobox: arrows, Enter or Tab, Escape).

import * as api from "./api.js";
import { h, clear, status, errorText } from "./dom.js";
import { randomId } from "./people.js";

let counter = 0;

export function composer({ roomId, replyTo = null, label, members, onSent }) {
  const id = `compose-${++counter}`;
  const listId = `${id}-names`;
  const out = h("div", { className: "compose-status" });
  const box = h("textarea", {
    id,
    rows: 2,
    placeholder: replyTo ? "Reply in thread…" : "Message… (@ to mention, Enter to send)",
    role: "combobox",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": listId,
  });
  const list = h("ul", { id: listId, role: "listbox", className: "completions", hidden: true, "aria-label": "Members" });
  let options = [];
  let active = -1;

  function mentionAtCaret() {
    const before = box.value.slice(0, box.selectionStart);
    const m = /(^|[^\w@])@([a-z0-9-]*)$/.exec(before);
    return m ? { start: before.length - m[2].length, prefix: m[2] } : null;
  }

  function closeList() {
    list.hidden = true;
    options = [];
    active = -1;
    box.setAttribute("aria-expanded", "false");
    box.removeAttribute("aria-activedescendant");
  }

  function drawList() {
    clear(list);
    options.forEach((name, i) => {
      const opt = h(
        "li",
        { id: `${listId}-${i}`, role: "option", "aria-selected": i === active ? "true" : "false", onmousedown: (e) => (e.preventDefault(), accept(i)) },
        `@${name}`,
      );
      list.append(opt);
    });
    list.hidden = options.length === 0;
    box.setAttribute("aria-expanded", String(!list.hidden));
    if (active >= 0) box.setAttribute("aria-activedescendant", `${listId}-${active}`);
  }

  function suggest() {
    const at = mentionAtCaret();
    if (!at) return closeList();
    const names = [...members().map((m) => m.name), "room"];
    options = names.filter((n) => n.startsWith(at.prefix) && n !== at.prefix).slice(0, 8);
    active = options.length ? 0 : -1;
    drawList();
  }

  function accept(i) {
    const at = mentionAtCaret();
    if (!at || !options[i]) return closeList();
    const rest = box.value.slice(box.selectionStart);
    box.value = `${box.value.slice(0, at.start)}${options[i]} ${rest}`;
    const caret = at.start + options[i].length + 1;
    box.setSelectionRange(caret, caret);
    closeList();
    box.focus();
  }

  async function send() {
    const body = box.value.trim();
    if (!body) return;
    box.disabled = true;
    try {
      const payload = { body, clientMsgId: randomId() };
      if (replyTo) payload.replyTo = replyTo;
      const message = await api.post(`/rooms/${encodeURIComponent(roomId)}/messages`, payload);
      box.value = "";
      status(out, "");
      onSent(message);
    } catch (err) {
      status(out, errorText(err), "error");
    } finally {
      box.disabled = false;
      box.focus();
    }
  }

  box.addEventListener("input", suggest);
  box.addEventListener("blur", () => setTimeout(closeList, 100));
  box.addEventListener("keydown", (e) => {
    if (!list.hidden && options.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
        return drawList();
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        return accept(active);
      }
      if (e.key === "Escape") return closeList();
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });

  return h(
    "form",
    { className: "compose", onsubmit: (e) => (e.preventDefault(), send()) },
    h("label", { for: id, className: "visually-hidden" }, label),
    h("div", { className: "compose-row" }, h("div", { className: "compose-box" }, box, list), h("button", { type: "submit" }, "Send")),
    out,
  );
}
