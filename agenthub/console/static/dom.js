// Small DOM helpers. Everything that came from the server is set as text (textContent or an
// attribute), never parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "className") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

// Text with its http(s) links as <a> elements; anything else stays a text node.
export function linkify(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let href = match[0].replace(/[.,;:!?)\]]+$/, "");
    let url;
    try {
      url = new URL(href);
    } catch {
      continue;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") continue;
    frag.append(text.slice(last, match.index));
    frag.append(h("a", { href: url.href, rel: "noopener noreferrer", target: "_blank" }, href));
    last = match.index + href.length;
  }
  frag.append(text.slice(last));
  return frag;
}

// A search highlight ("the «deploy» failed") as text with <mark> elements.
export function highlighted(text) {
  const frag = document.createDocumentFragment();
  text.split(/(«[^»]*»)/).forEach((part) => {
    if (part.startsWith("«") && part.endsWith("»")) frag.append(h("mark", {}, part.slice(1, -1)));
    else if (part) frag.append(part);
  });
  return frag;
}

export function time(iso) {
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString();
}

export function status(el, text, kind = "info") {
  clear(el);
  if (text) el.append(h("p", { className: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text));
}

export function errorText(err) {
  return err && err.message ? err.message : String(err);
}

// Replace an element's children (null and false children are left out).
export function fill(el, ...children) {
  return append(clear(el), children);
}
