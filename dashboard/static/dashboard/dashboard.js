// The dashboard page: the wiring that writes the DOM. One leader tab polls the
// live region (on the server's nudges while its socket is up) and broadcasts it
// (coordinator.js); every tab swaps it in, counts down retry timers and shows
// in its footer (footer.js) where its updates come from and whether they are paused.
import { optionsFromDataset, startTabs } from "./coordinator.js";
import { TabFooter } from "./footer.js";
import { sanitizeLiveRegion } from "./sanitize.js";

const CONTENT_HEADER = "X-Coordhub-Content";
const STATE_HEADER = "X-Coordhub-State";

const body = document.body;
const options = optionsFromDataset(body.dataset);
let versions = currentVersions();

function liveRegion() {
  return document.getElementById("live");
}

function currentVersions() {
  const live = liveRegion();
  return { content: live?.dataset.contentVersion ?? "", state: live?.dataset.stateVersion ?? "" };
}

/** Ask for the live region; resolve to {changed, html} as the scheduler expects. */
async function poll({ signal } = {}) {
  const response = await fetch(body.dataset.liveUrl, {
    headers: { [CONTENT_HEADER]: versions.content, "HX-Request": "true" },
    credentials: "same-origin",
    signal,
  });
  if (response.status === 204) return { changed: false, html: null };
  if (!response.ok) throw new Error(`The dashboard answered ${response.status}.`);
  const html = await response.text();
  const changed = response.headers.get(STATE_HEADER) !== versions.state;
  paint(html, { served: true });
  return { changed, html };
}

function renderedAt(region) {
  return Number(region?.dataset.renderedAt);
}

// The newest render time among the regions the server gave this tab itself: the
// page, this tab's own polls and htmx swaps. Regions from storage are untrusted.
let servedRenderedAt = renderedAt(liveRegion()) || 0;

/**
 * Swap fresh live markup in, keeping only what the dashboard itself renders.
 * `served`: it is this tab's own answer from the server, which always paints.
 */
function paint(html, { served = false } = {}) {
  const live = liveRegion();
  const fresh = sanitizeLiveRegion(html);
  if (!live || !fresh) return;
  // Versions are hashes; the render time says which of two regions is newer, so a
  // stale broadcast never paints over what the server gave this tab. Only render
  // times from the server itself hold a region back: a stored region rendered "far
  // in the future" (planted) would otherwise freeze the page on itself.
  if (served) servedRenderedAt = Math.max(servedRenderedAt, renderedAt(fresh) || 0);
  else if (renderedAt(fresh) < servedRenderedAt) return;
  if (fresh.dataset.contentVersion !== live.dataset.contentVersion) {
    const stateChanged = fresh.dataset.stateVersion !== live.dataset.stateVersion;
    live.replaceWith(fresh);
    window.htmx?.process(fresh);
    startCountdowns(fresh);
    showTimes(fresh);
    if (stateChanged) announceOperations(fresh);
  }
  // Also when the region already shows it (a cancel swapped it in): else every poll
  // would send stale versions, be answered in full and count as a change of state.
  versions = currentVersions();
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });
const ABSOLUTE = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "long", // to the second, with the zone
});
const UNITS = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

/** Times as "3 min. ago", with the local time and zone on hover, from each <time datetime>. */
function showTimes(root) {
  for (const element of root.querySelectorAll("time.ago[datetime]")) {
    const moment = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) continue;
    const seconds = Math.round((moment.getTime() - Date.now()) / 1000);
    const [unit, size] = UNITS.find(([, length]) => Math.abs(seconds) >= length) ?? UNITS.at(-1);
    element.textContent = RELATIVE.format(Math.round(seconds / size), unit);
    element.title = ABSOLUTE.format(moment);
  }
}

const STATUSES = ["running", "queued", "completed", "failed", "cancelled"];

/** Say what the operations are now, once per change of state (never per progress tick). */
function announceOperations(region) {
  const announcer = document.getElementById("state-announcer");
  const single = region.querySelector(".status-line[data-status]"); // an operation's own page
  if (single && announcer) {
    announcer.textContent = `The operation is now ${single.dataset.status}.`;
    return;
  }
  const rows = [...region.querySelectorAll("tr.operation")];
  const counts = STATUSES.map((status) => [status, rows.filter((row) => row.dataset.status === status).length]);
  const said = counts.filter(([, count]) => count > 0).map(([status, count]) => `${count} ${status}`);
  if (announcer) announcer.textContent = `Operations shown: ${said.join(", ") || "none"}.`;
}

function startCountdowns(root) {
  for (const element of root.querySelectorAll("[data-countdown]")) {
    const endsAt = Date.now() + Number(element.dataset.countdown) * 1000;
    const tick = () => {
      const left = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
      element.textContent = String(left);
      if (left > 0 && element.isConnected) setTimeout(tick, 1000);
    };
    tick();
  }
}

const footer = new TabFooter(document);
const handle = startTabs({
  ...options,
  poll,
  onResult: paint,
  onRoleChange(role) {
    body.dataset.tabRole = role;
    footer.showRole(role);
  },
  onSchedule: (schedule) => footer.showSchedule(schedule),
  onTabCount: (count) => footer.showTabCount(count),
  onPauseChange: (pause) => footer.showPause(pause),
});
// Paused, no tab polls or holds a socket, even the one the lead falls to.
footer.onToggle((pause) => (pause ? handle.pause() : handle.resume()));
startCountdowns(document);
showTimes(document);
setInterval(() => showTimes(document), 15000);

// A change this tab made (start, cancel) is news for the leader: poll now.
document.addEventListener("coordhub:changed", () => handle.wake());
// An outerHTML swap's detail.target is the element that left; event.target is what came in.
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.target.id === "live") {
    servedRenderedAt = Math.max(servedRenderedAt, renderedAt(event.target) || 0);
  }
  startCountdowns(event.target);
  showTimes(event.target);
});
document.addEventListener("submit", () => handle.noteAction());
document.addEventListener("click", (event) => {
  if (event.target.closest("button, a, select, input")) handle.noteAction();
});

// Cached fragments (and the pause) belong to the signed-in user: forget them at sign-out.
document.getElementById("logout-form")?.addEventListener("submit", () => {
  handle.stop();
  handle.clear();
});
