// Live-region markup can arrive from another tab through localStorage, which
// anything on this origin can write. DOMPurify (vendored, see vendor/) keeps only
// the elements and attributes the live region of dashboard/index.html renders, so
// planted markup can neither run script nor make htmx send a request the
// dashboard would not, nor plant ids or data-* attributes the page reads.

import DOMPurify from "./vendor/purify.es.mjs";

// An instance of our own, so that its hooks touch nobody else's DOMPurify.
const purify = DOMPurify(window);

const CONFIG = Object.freeze({
  // An element not listed goes with everything inside it, as a whole.
  ALLOWED_TAGS: [
    "#text", "div", "section", "h2", "span", "strong", "ol", "li", "p", "small", "table",
    "thead", "tbody", "tr", "th", "td", "progress", "button", "time",
  ],
  ALLOWED_ATTR: [
    "id", "class", "role", "max", "value", "type", "scope", "tabindex", "datetime", "title",
    "data-state-version", "data-content-version", "data-rendered-at", "data-status",
    "data-testid", "data-countdown",
    "hx-post", "hx-target", "hx-swap",
  ],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: true,
  KEEP_CONTENT: false,
  RETURN_DOM_FRAGMENT: true,
});

const CANCEL_URL = /^\/dashboard\/operations\/[0-9a-f-]{36}\/cancel\/$/;
// Ids the live region renders; the page looks some up (#live, #op-<id>).
const ID = /^(?:live|slots-heading|budget-heading|operations-heading|op-[0-9a-f-]{36})$/;
// Attributes allowed only with the values the dashboard renders: the htmx request
// of a Cancel button (and nothing else htmx could send) and the ids above.
const VALUES = {
  id: (value) => ID.test(value),
  "hx-post": (value) => CANCEL_URL.test(value),
  "hx-target": (value) => value === "#live",
  "hx-swap": (value) => value === "outerHTML",
};

purify.addHook("uponSanitizeAttribute", (_node, data) => {
  const check = VALUES[data.attrName];
  if (check && !check(data.attrValue)) data.keepAttr = false;
});

/** Return a clean `#live` element built from `html`, or null if there is none. */
export function sanitizeLiveRegion(html) {
  const fragment = purify.sanitize(String(html), CONFIG);
  const live = fragment.getElementById("live");
  if (!live || live.tagName !== "DIV") return null;
  return document.importNode(live, true);
}
