// Tab presence: each open tab keeps its `tab:<tabId>` record {seenAt, hidden}
// (see storage.js) fresh on the lease's heartbeat and removes it on pagehide, so
// that a tab can say how many tabs of its namespace are open (the leader's
// footer: "This tab fetches updates for your 3 open tabs").
//
// A record counts while it is fresh: renewed within the lease's timeout, or
// within the hidden timeout for a hidden tab, whose timers Chrome runs late (see
// lease.js). A count removes the records of tabs long gone (a crash leaves its
// record behind) and those that fail their checks. It stops at MAX_COUNTED_TABS
// ("100+") and looks at the first keys only (storage.js), so that a flood of
// planted keys makes the count wrong but never the tab slow; the storage events
// of a burst of writes lead to one count, not one each.

import { LEASE_DEFAULTS, isVisible } from "./lease.js";

export const MAX_COUNTED_TABS = 100;
// Long enough to take a burst of storage events (a flood, a sign-out) as one.
const RECOUNT_DELAY_MS = 100;

/** Keep this tab's presence record fresh and count the open tabs of its namespace. */
export class TabPresence {
  #records;
  #name;
  #options;
  #count = null;
  #beatTimer = null;
  #recountTimer = null;
  #listeners = [];
  #left = false;

  constructor({
    records,
    tabId,
    onCount = () => {},
    heartbeatMs = LEASE_DEFAULTS.heartbeatMs,
    timeoutMs = LEASE_DEFAULTS.timeoutMs,
    hiddenTimeoutMs = LEASE_DEFAULTS.hiddenTimeoutMs,
  }) {
    this.#records = records;
    this.#name = `tab:${tabId}`;
    this.#options = { onCount, heartbeatMs, timeoutMs, hiddenTimeoutMs };
  }

  /** {tabs, capped}: the open tabs, this one included, and whether there may be more. */
  get count() {
    return this.#count;
  }

  /** Whether another tab of the namespace is open. */
  get othersOpen() {
    return (this.#count?.tabs ?? 1) > 1;
  }

  /** Say that this tab is open, count the tabs, and keep both up to date. */
  start() {
    // Without shared storage every tab is on its own: there is nothing to count.
    if (!this.#records.shared) return this;
    this.#listen(window, "storage", (event) => this.#onStorage(event));
    this.#listen(window, "pagehide", () => this.#leave());
    this.#listen(window, "pageshow", (event) => event.persisted && this.#arrive());
    // Hidden, the record lasts longer: say so at once.
    this.#listen(document, "visibilitychange", () => this.#beat());
    this.#arrive();
    return this;
  }

  /** Stop counting and remove this tab's record. */
  stop() {
    this.#listeners.forEach(([target, type, listener]) => {
      target.removeEventListener(type, listener);
    });
    this.#listeners = [];
    this.#leave();
  }

  #listen(target, type, listener) {
    target.addEventListener(type, listener);
    this.#listeners.push([target, type, listener]);
  }

  #beat() {
    // Hidden on its way out (after pagehide), a tab is gone, not in the background.
    if (this.#left) return;
    clearTimeout(this.#beatTimer);
    this.#records.write(this.#name, { seenAt: Date.now(), hidden: !isVisible() });
    this.#recount();
    this.#beatTimer = setTimeout(() => this.#beat(), this.#options.heartbeatMs);
  }

  #arrive() {
    this.#left = false;
    this.#beat();
  }

  #leave() {
    this.#left = true;
    clearTimeout(this.#beatTimer);
    clearTimeout(this.#recountTimer);
    this.#beatTimer = null;
    this.#recountTimer = null;
    this.#records.remove(this.#name);
  }

  #onStorage(event) {
    const changed = this.#records.changed(event);
    // Storage was cleared (as at a sign-out in another tab): this tab is still open.
    if (changed === "all") this.#beat();
    // A tab came or went; a renewal changes no count.
    else if (changed === "tab" && (event.oldValue === null || event.newValue === null)) {
      this.#scheduleRecount();
    }
  }

  #scheduleRecount() {
    if (this.#left || this.#recountTimer !== null) return;
    this.#recountTimer = setTimeout(() => {
      this.#recountTimer = null;
      this.#recount();
    }, RECOUNT_DELAY_MS);
  }

  #recount() {
    const now = Date.now();
    const gone = [];
    let tabs = 1; // this tab, whether or not its record is among those read
    for (const [tabId, record] of this.#records.tabs()) {
      if (tabs >= MAX_COUNTED_TABS) break;
      if (`tab:${tabId}` === this.#name) continue;
      if (this.#isFresh(record, now)) tabs += 1;
      else if (this.#isGone(record, now)) gone.push(`tab:${tabId}`);
    }
    // After the scan, which a removal would shift.
    gone.forEach((name) => this.#records.remove(name));
    // At the bound, there may be more: "100+".
    const count = { tabs: Math.min(tabs, MAX_COUNTED_TABS), capped: tabs >= MAX_COUNTED_TABS };
    if (count.tabs === this.#count?.tabs && count.capped === this.#count?.capped) return;
    this.#count = count;
    this.#options.onCount(count);
  }

  #isFresh(record, now) {
    const { timeoutMs, hiddenTimeoutMs } = this.#options;
    if (record === null || record.seenAt > now + timeoutMs) return false;
    return now - record.seenAt <= (record.hidden ? hiddenTimeoutMs : timeoutMs);
  }

  // Unreadable, from "the future" (planted, or a broken clock), or older than any
  // tab's timers run late: no open tab renews it.
  #isGone(record, now) {
    const { timeoutMs, hiddenTimeoutMs } = this.#options;
    return record === null || record.seenAt > now + timeoutMs || now - record.seenAt > hiddenTimeoutMs;
  }
}
