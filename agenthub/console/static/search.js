// Search across the rooms the person can see; each result links into its room at its seq.

import * as api from "./api.js";
import * as people from "./people.js";
import { h, clear, highlighted, time, status, errorText } from "./dom.js";

export async function render(main, params) {
  await people.load();
  const q = params.get("q") || "";
  const roomFilter = params.get("room") || "";
  const input = h("input", { id: "search-q", name: "q", type: "search", value: q, required: true, maxlength: 500, placeholder: 'deploy failed, "a phrase", -word' });
  const roomInput = h("input", { id: "search-room", name: "room", value: roomFilter, placeholder: "any room", autocomplete: "off" });
  const results = h("ol", { className: "results", "aria-label": "Search results" });
  const out = h("div", { role: "status" });
  const more = h("button", { type: "button", hidden: true }, "More results");
  let cursor = null;

  main.append(
    h("h1", {}, "Search"),
    h(
      "form",
      {
        className: "search card",
        role: "search",
        onsubmit: (e) => {
          e.preventDefault();
          location.hash = `#/search${api.query({ q: input.value.trim(), room: roomInput.value.trim() })}`;
        },
      },
      h("div", { className: "field" }, h("label", { for: "search-q" }, "Words"), input),
      h("div", { className: "field" }, h("label", { for: "search-room" }, "Room (slug, optional)"), roomInput),
      h("button", { type: "submit" }, "Search"),
    ),
    out,
    results,
    more,
  );

  async function page() {
    more.disabled = true;
    try {
      const data = await api.get(`/search${api.query({ q, room: roomFilter, cursor, limit: 25 })}`);
      for (const r of data.results) {
        const m = r.message;
        results.append(
          h(
            "li",
            {},
            h(
              "a",
              { href: `#/room/${encodeURIComponent(r.room.id)}/${m.seq}`, className: "result" },
              h("span", { className: "meta" }, `#${r.room.slug} · ${people.name(m.senderId)} · ${time(m.createdAt)} · #${m.seq}`),
              h("span", { className: "snippet" }, highlighted(r.highlight)),
            ),
          ),
        );
      }
      cursor = data.nextCursor;
      more.hidden = !cursor;
      status(out, results.children.length ? `${results.children.length}${cursor ? "+" : ""} results` : "No message matches.");
    } catch (err) {
      status(out, errorText(err), "error");
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", page);
  if (q) await page();
  else input.focus();
  main.dataset.ready = "true";
}
