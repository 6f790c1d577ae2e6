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
    "thead", "tbody", "tr", "th", "td", "progress", "button", "time", "a",
    // The operation page's live part (operation.html).
    "dl", "dt", "dd", "pre", "details", "summary",
  ],
  ALLOWED_ATTR: [
    "id", "class", "role", "max", "value", "type", "scope", "tabindex", "datetime", "title",
    "data-state-version", "data-content-version", "data-rendered-at", "data-status",
    "data-testid", "data-countdown",
    "hx-post", "hx-target", "hx-swap", "hx-confirm", "href",
  ],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: true,
  KEEP_CONTENT: false,
  RETURN_DOM_FRAGMENT: true,
});

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
// The dashboard's Cancel buttons, and the operation page's.
const CANCEL_URL = new RegExp(`^(?:/dashboard)?/operations/${UUID}/cancel/$`);
// Links go to an operation's page and nowhere else.
const OPERATION_URL = new RegExp(`^/operations/${UUID}/$`);
// The operation page asks before cancelling a running operation, in these words only.
const CONFIRMATION = /^Cancel running operation [0-9a-f]{8}\?$/;
// Ids the live regions render; the page looks some up (#live, #op-<id>).
const ID = new RegExp(
  `^(?:live|slots-heading|budget-heading|line-heading|operations-heading|op-${UUID}` +
    "|detail-(?:status|times|slot|messages|result|error)-heading)$",
);
// Attributes allowed only with the values the dashboard renders: the htmx request
// of a Cancel button (and nothing else htmx could send) and the ids above.
const VALUES = {
  id: (value) => ID.test(value),
  "hx-post": (value) => CANCEL_URL.test(value),
  "hx-target": (value) => value === "#live",
  "hx-swap": (value) => value === "outerHTML",
  "hx-confirm": (value) => CONFIRMATION.test(value),
  href: (value) => OPERATION_URL.test(value),
};

// Requests only from buttons, links only on anchors: planted markup cannot make a
// row or a heading cancel on a click, nor an anchor post.
const ELEMENT_OF = { "hx-post": "BUTTON", "hx-target": "BUTTON", "hx-swap": "BUTTON",
  "hx-confirm": "BUTTON", href: "A" };

purify.addHook("uponSanitizeAttribute", (node, data) => {
  const check = VALUES[data.attrName];
  const element = ELEMENT_OF[data.attrName];
  if (element && node.nodeName !== element) data.keepAttr = false;
  else if (check && !check(data.attrValue)) data.keepAttr = false;
});

/** Return a clean `#live` element built from `html`, or null if there is none. */
export function sanitizeLiveRegion(html) {
  const fragment = purify.sanitize(String(html), CONFIG);
  const live = fragment.getElementById("live");
  if (!live || live.tagName !== "DIV") return null;
  return document.importNode(live, true);
}
