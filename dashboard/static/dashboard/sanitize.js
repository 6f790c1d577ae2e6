// Live-region markup can arrive from another tab through localStorage, which
// anything on this origin can write. Keep only the elements and attributes the
// dashboard renders, so planted markup can neither run script nor make htmx
// send a request the dashboard would not.

const ELEMENTS = new Set([
  "DIV", "SECTION", "H2", "SPAN", "STRONG", "OL", "LI", "P", "SMALL", "TABLE", "THEAD",
  "TBODY", "TR", "TH", "TD", "PROGRESS", "BUTTON",
]);
const ATTRIBUTES = new Set(["id", "class", "role", "max", "value", "type"]);
const CANCEL_URL = /^\/dashboard\/operations\/[0-9a-f-]{36}\/cancel\/$/;
// htmx attributes the dashboard uses, each with the only values it renders.
const HTMX_ATTRIBUTES = {
  "hx-post": (value) => CANCEL_URL.test(value),
  "hx-target": (value) => value === "#live",
  "hx-swap": (value) => value === "outerHTML",
};

/** Return a clean `#live` element built from `html`, or null if there is none. */
export function sanitizeLiveRegion(html) {
  const parsed = new DOMParser().parseFromString(String(html), "text/html");
  const live = parsed.getElementById("live");
  if (!live || live.tagName !== "DIV") return null;
  cleanTree(live);
  return document.importNode(live, true);
}

function cleanTree(element) {
  for (const child of [...element.children]) {
    if (ELEMENTS.has(child.tagName)) cleanTree(child);
    else child.remove();
  }
  for (const { name, value } of [...element.attributes]) {
    if (!isAllowed(name, value)) element.removeAttribute(name);
  }
}

function isAllowed(name, value) {
  if (ATTRIBUTES.has(name) || name.startsWith("aria-")) return true;
  if (name.startsWith("data-")) return !name.startsWith("data-hx") && !name.startsWith("data-on");
  const check = HTMX_ATTRIBUTES[name];
  return Boolean(check?.(value));
}
