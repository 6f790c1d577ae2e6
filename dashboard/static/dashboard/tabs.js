// Cross-tab coordination for the dashboard: one leader tab polls the server and
// broadcasts each result; the other tabs (followers) only listen.
//
// Leadership is a lease record in localStorage under `coordhub:<namespace>:leader`:
//   {tabId, epoch, heartbeatAt, expiresAt, hidden}
// The leader renews it every heartbeatMs; a lease nobody renewed by expiresAt is
// free. Every claim takes a higher epoch, so a tab that finds another tab's lease
// with an epoch at least its own knows it lost and steps down. localStorage has
// no compare-and-set: a claim is written, then re-read after settleMs (long
// enough for rival writes to arrive as storage events) before the tab polls;
// whichever write the browser applied last is the one every tab reads.
//
// Two leaders never poll together for longer than one heartbeat: a leader steps
// down as soon as a storage event shows a newer claim, re-reads the lease before
// each heartbeat, and re-reads it right before each poll.
//
// Background throttling. Chrome runs the timers of hidden tabs late (once a
// second, and after 5 minutes hidden as rarely as once a minute), so a hidden
// leader's heartbeat can be 60 s late. Shortening the lease would make hidden
// tabs steal it from each other every minute (flapping); lengthening it for
// everybody would slow the replacement of a crashed leader. So:
//   * leadership follows visibility: a leader that becomes hidden republishes
//     its lease marked `hidden`, and a visible tab takes such a lease at once
//     (at once on the storage event, or when it becomes visible itself). A
//     visible leader is never taken over by a hidden tab before it expires.
//   * a hidden lease lasts hiddenTimeoutMs (75 s: longer than Chrome's one-minute
//     intensive throttling), so hidden tabs do not steal it from each other
//     because a throttled timer ran late. When no tab is visible nobody is
//     looking, so replacing a crashed hidden leader within 75 s instead of 10 s
//     costs nothing; as soon as any tab becomes visible it takes over at once.
//   * a visible lease lasts timeoutMs (10 s) and followers re-check exactly when
//     it runs out, so a crashed visible leader is replaced within timeoutMs of
//     its last heartbeat; a merely late timer (< timeoutMs) changes nothing.
//   * `pagehide` and `freeze` resign (remove the lease), so closing or freezing
//     the leader hands over at once through the storage event.
//
// Everything read from localStorage was written by another tab (or anything
// else on this origin) and is untrusted: it is parsed as JSON, checked field by
// field, and only strings are handed to callbacks. Nothing is evaluated or
// inserted into the DOM here.
//
// Without localStorage (disabled storage makes access throw) every tab is its
// own leader and polls on its own, with the same backoff.

const LEADER = "leader";
const FOLLOWER = "follower";
const SIGNALS = new Set(["action", "wake", "focus"]);

export const TAB_DEFAULTS = Object.freeze({
  heartbeatMs: 3000,
  timeoutMs: 10000,
  hiddenTimeoutMs: 75000,
  settleMs: 50,
});

export const POLL_DEFAULTS = Object.freeze({
  initialMs: 5000,
  multiplier: 1.2,
  maxMs: 30000,
  jitter: 0.1,
  maxAttempts: 100,
  pollTimeoutMs: 30000,
});

// data-* attribute (as a dataset key) -> option name.
const DATASET_OPTIONS = {
  tabsNamespace: "namespace",
  tabsHeartbeatMs: "heartbeatMs",
  tabsTimeoutMs: "timeoutMs",
  tabsHiddenTimeoutMs: "hiddenTimeoutMs",
  pollInitialMs: "initialMs",
  pollMultiplier: "multiplier",
  pollMaxMs: "maxMs",
  pollJitter: "jitter",
  pollMaxAttempts: "maxAttempts",
  pollTimeoutMs: "pollTimeoutMs",
};

function noop() {}

/** Return window.localStorage, or null where using it throws (disabled storage). */
export function openStorage(win = window) {
  try {
    const storage = win.localStorage;
    const probe = "coordhub:probe";
    storage.setItem(probe, probe);
    storage.removeItem(probe);
    return storage;
  } catch {
    return null;
  }
}

/** Return the prefix shared by every key of a namespace. */
export function namespacePrefix(namespace) {
  return `coordhub:${namespace}:`;
}

/** Remove every key of a namespace (at logout: cached fragments belong to the user). */
export function clearNamespace(namespace, storage = openStorage()) {
  if (!storage) return;
  const prefix = namespacePrefix(namespace);
  const keys = [];
  for (let index = 0; index < storage.length; index += 1) {
    const key = storage.key(index);
    if (key !== null && key.startsWith(prefix)) keys.push(key);
  }
  keys.forEach((key) => storage.removeItem(key));
}

/** Return the interval that follows an unchanged poll. */
export function nextInterval(intervalMs, { multiplier, maxMs }) {
  return Math.min(maxMs, Math.round(intervalMs * multiplier));
}

/** Spread a delay by ±jitter so many clients do not poll in lockstep. */
export function withJitter(ms, jitter, random = Math.random) {
  return Math.round(ms * (1 + jitter * (2 * random() - 1)));
}

/** Read dashboard options from data-* attributes (module scripts have no currentScript). */
export function optionsFromDataset(dataset) {
  const options = {};
  for (const [attribute, option] of Object.entries(DATASET_OPTIONS)) {
    const value = dataset[attribute];
    if (value === undefined || value === "") continue;
    options[option] = option === "namespace" ? value : Number(value);
  }
  return options;
}

function sleep(ms) {
  return new Promise((resolve) => {
    setTimeout(resolve, ms);
  });
}

function isVisible() {
  return document.visibilityState === "visible";
}

function newId() {
  // getRandomValues, not randomUUID: the latter needs a secure context.
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function parseRecord(text) {
  if (typeof text !== "string") return null;
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" ? value : null;
  } catch {
    return null;
  }
}

function readRecord(storage, key) {
  try {
    return parseRecord(storage.getItem(key));
  } catch {
    return null;
  }
}

function writeRecord(storage, key, record) {
  try {
    storage.setItem(key, JSON.stringify(record));
    return true;
  } catch {
    // Quota or storage revoked mid-session: followers keep their last result.
    return false;
  }
}

function removeRecord(storage, key) {
  try {
    storage.removeItem(key);
  } catch {
    // Nothing to hand over if storage is gone.
  }
}

function isLease(value) {
  return (
    value !== null &&
    typeof value.tabId === "string" &&
    Number.isSafeInteger(value.epoch) &&
    Number.isFinite(value.expiresAt)
  );
}

function isBroadcast(value) {
  return (
    value !== null &&
    Number.isSafeInteger(value.seq) &&
    value.seq > 0 &&
    typeof value.html === "string"
  );
}

function isActionRecord(value) {
  return value !== null && Number.isFinite(value.at) && typeof value.nonce === "string";
}

/** Elect one leader tab per namespace, keep it alive, and carry its broadcasts. */
export class TabCoordinator {
  #options;
  #storage;
  #keys;
  #role = FOLLOWER;
  #epoch = 0;
  #seenEpoch = 0;
  #lastSeq = 0;
  #claimEpoch = null;
  #settleTimer = null;
  #tickTimer = null;
  #listeners = [];
  #soloActions = new Map();

  constructor({
    namespace,
    storage = openStorage(),
    tabId = newId(),
    roleElement = document.body,
    onRoleChange = noop,
    onBroadcast = noop,
    onSignal = noop,
    heartbeatMs = TAB_DEFAULTS.heartbeatMs,
    timeoutMs = TAB_DEFAULTS.timeoutMs,
    hiddenTimeoutMs = TAB_DEFAULTS.hiddenTimeoutMs,
    settleMs = TAB_DEFAULTS.settleMs,
  } = {}) {
    if (!namespace) {
      throw new TypeError("TabCoordinator needs a namespace, such as the signed-in user's id.");
    }
    this.namespace = namespace;
    this.tabId = tabId;
    this.#storage = storage;
    this.#options = {
      roleElement,
      onRoleChange,
      onBroadcast,
      onSignal,
      heartbeatMs,
      timeoutMs,
      hiddenTimeoutMs,
      settleMs,
    };
    const prefix = namespacePrefix(namespace);
    this.#keys = {
      leader: `${prefix}leader`,
      broadcast: `${prefix}broadcast`,
      signal: `${prefix}signal`,
      action: (name) => `${prefix}action:${name}`,
    };
  }

  get role() {
    return this.#role;
  }

  get isLeader() {
    return this.#role === LEADER;
  }

  /** Whether tabs share localStorage; without it every tab leads itself. */
  get isShared() {
    return this.#storage !== null;
  }

  /** Listen to other tabs, paint the last broadcast, and run for leadership. */
  start() {
    this.#listen(window, "storage", (event) => this.#onStorage(event));
    this.#listen(window, "pagehide", () => this.resign());
    this.#listen(window, "pageshow", (event) => event.persisted && this.elect());
    this.#listen(document, "freeze", () => this.resign());
    this.#listen(document, "resume", () => this.elect());
    this.#listen(document, "visibilitychange", () => this.#onVisibilityChange());
    this.#showRole();
    if (!this.isShared) {
      this.#setRole(LEADER);
      return this;
    }
    // A new tab shows the last result at once instead of waiting for a poll.
    this.#receiveBroadcast(readRecord(this.#storage, this.#keys.broadcast));
    this.elect();
    this.#scheduleTick();
    return this;
  }

  /** Stop listening and ticking without resigning (the lease then expires). */
  stop() {
    this.#listeners.forEach(([target, type, listener]) => {
      target.removeEventListener(type, listener);
    });
    this.#listeners = [];
    clearTimeout(this.#tickTimer);
    clearTimeout(this.#settleTimer);
    this.#tickTimer = null;
    this.#settleTimer = null;
    this.#claimEpoch = null;
  }

  /** Claim the lease if it is free for this tab; return whether a claim is under way. */
  elect() {
    if (!this.isShared || this.isLeader) return false;
    if (this.#claimEpoch !== null) return true;
    const lease = this.#readLease();
    if (!this.#isFreeForMe(lease)) return false;
    this.#claim(lease);
    return this.#claimEpoch !== null;
  }

  /** Renew this tab's lease, or step down if another tab holds a newer one. */
  heartbeat() {
    if (!this.isShared || !this.isLeader) return;
    const lease = this.#readLease();
    if (this.#isRivalClaim(lease)) {
      this.#setRole(FOLLOWER);
      return;
    }
    this.#writeLease(this.#epoch);
  }

  /** Give up the lease so that another tab takes over at once (page closing or frozen). */
  resign() {
    if (!this.isShared) return;
    clearTimeout(this.#settleTimer);
    this.#claimEpoch = null;
    if (this.#readLease()?.tabId === this.tabId) removeRecord(this.#storage, this.#keys.leader);
    this.#setRole(FOLLOWER);
  }

  /** Confirm, right before a poll, that this tab still holds the lease. */
  holdsLease() {
    if (!this.isShared) return true;
    if (!this.isLeader) return false;
    this.#defendLease(this.#readLease());
    return this.isLeader;
  }

  /** Publish a result to every tab, this one included, under the next sequence number. */
  broadcast(html) {
    const stored = this.isShared ? readRecord(this.#storage, this.#keys.broadcast) : null;
    const seq = Math.max(this.#lastSeq, isBroadcast(stored) ? stored.seq : 0) + 1;
    const record = { seq, html: String(html), tabId: this.tabId, sentAt: Date.now() };
    if (this.isShared) writeRecord(this.#storage, this.#keys.broadcast, record);
    // Storage events never reach the writing tab, so the leader hands itself the result.
    this.#receiveBroadcast(record);
    return seq;
  }

  /** Tell the leader about something that happened in this tab: "action", "wake" or "focus". */
  signal(kind) {
    if (!SIGNALS.has(kind)) throw new TypeError(`Unknown signal ${JSON.stringify(kind)}.`);
    if (this.isLeader) {
      this.#options.onSignal(kind);
      return;
    }
    // The nonce makes every signal a new value, so each one fires a storage event.
    writeRecord(this.#storage, this.#keys.signal, { kind, tabId: this.tabId, nonce: newId() });
  }

  /**
   * Resolve to true in only one tab per window for the named action.
   *
   * Asynchronous on purpose: the echoes it de-duplicates arrive in every tab
   * within milliseconds, before one tab's write can reach the others, so a
   * synchronous check would let several pass. Like a lease claim, the tab
   * writes, waits settleMs for rival writes, and wins only if its write is
   * the one every tab now reads.
   */
  async canExecuteAction(name, windowMs) {
    const now = Date.now();
    if (!this.isShared) return this.#canExecuteSolo(name, windowMs, now);
    const key = this.#keys.action(name);
    const last = readRecord(this.#storage, key);
    if (isActionRecord(last) && Math.abs(now - last.at) < windowMs) return false;
    const record = { tabId: this.tabId, at: now, nonce: newId() };
    writeRecord(this.#storage, key, record);
    await sleep(this.#options.settleMs);
    return readRecord(this.#storage, key)?.nonce === record.nonce;
  }

  /** Remove every key of this namespace (at logout). */
  clear() {
    clearNamespace(this.namespace, this.#storage);
    this.#lastSeq = 0;
    this.#soloActions.clear();
  }

  #canExecuteSolo(name, windowMs, now) {
    const last = this.#soloActions.get(name);
    if (last !== undefined && now - last < windowMs) return false;
    this.#soloActions.set(name, now);
    return true;
  }

  #listen(target, type, listener) {
    target.addEventListener(type, listener);
    this.#listeners.push([target, type, listener]);
  }

  #readLease() {
    const lease = readRecord(this.#storage, this.#keys.leader);
    if (!isLease(lease)) return null;
    this.#seenEpoch = Math.max(this.#seenEpoch, lease.epoch);
    return lease;
  }

  #writeLease(epoch) {
    const now = Date.now();
    const hidden = !isVisible();
    const { timeoutMs, hiddenTimeoutMs } = this.#options;
    const expiresAt = now + (hidden ? hiddenTimeoutMs : timeoutMs);
    this.#seenEpoch = Math.max(this.#seenEpoch, epoch);
    const lease = { tabId: this.tabId, epoch, heartbeatAt: now, expiresAt, hidden };
    writeRecord(this.#storage, this.#keys.leader, lease);
  }

  #isLive(lease) {
    const now = Date.now();
    const { timeoutMs, hiddenTimeoutMs } = this.#options;
    // A lease promising more than the longest term is bogus (planted, or a broken
    // clock) and must not block elections forever.
    return now <= lease.expiresAt && lease.expiresAt <= now + hiddenTimeoutMs + timeoutMs;
  }

  #isFreeForMe(lease) {
    if (!lease || lease.tabId === this.tabId || !this.#isLive(lease)) return true;
    // Leadership follows visibility, so the tab someone is looking at polls on time.
    return lease.hidden === true && isVisible();
  }

  #isRivalClaim(lease) {
    return lease !== null && lease.tabId !== this.tabId && lease.epoch >= this.#epoch;
  }

  #claim(lease) {
    const epoch = Math.max(this.#seenEpoch, lease?.epoch ?? 0) + 1;
    this.#writeLease(epoch);
    if (this.#readLease()?.tabId !== this.tabId) return;
    this.#claimEpoch = epoch;
    this.#settleTimer = setTimeout(() => this.#verifyClaim(epoch), this.#options.settleMs);
  }

  #verifyClaim(epoch) {
    this.#settleTimer = null;
    this.#claimEpoch = null;
    const lease = this.#readLease();
    if (lease?.tabId !== this.tabId || lease.epoch !== epoch) return;
    this.#epoch = epoch;
    this.#setRole(LEADER);
  }

  #defendLease(lease) {
    if (lease?.tabId === this.tabId && lease.epoch === this.#epoch) return;
    if (this.#isRivalClaim(lease)) {
      this.#setRole(FOLLOWER);
      return;
    }
    // Removed, or overwritten by a stale leader that has not noticed it lost: put it back.
    this.#writeLease(this.#epoch);
  }

  #onStorage(event) {
    if (event.storageArea !== this.#storage) return;
    // Keys removed (a logout in another tab): the next leader counts again from 1.
    if (event.newValue === null) this.#forgetBroadcastsIfCleared(event.key);
    if (event.key === null || event.key === this.#keys.leader) this.#onLeaseChange();
    else if (event.key === this.#keys.broadcast) {
      this.#receiveBroadcast(parseRecord(event.newValue));
    } else if (event.key === this.#keys.signal) this.#receiveSignal(parseRecord(event.newValue));
  }

  #forgetBroadcastsIfCleared(key) {
    if (key === null || key === this.#keys.broadcast) this.#lastSeq = 0;
  }

  #onLeaseChange() {
    const lease = this.#readLease();
    if (this.isLeader) this.#defendLease(lease);
    else this.elect();
    this.#scheduleTick();
  }

  #onVisibilityChange() {
    if (!this.isShared) return;
    // A leader republishes its visibility so that a visible tab can take a hidden lease.
    if (this.isLeader) this.heartbeat();
    else if (isVisible()) this.elect();
  }

  #receiveBroadcast(record) {
    if (!isBroadcast(record) || record.seq <= this.#lastSeq) return;
    this.#lastSeq = record.seq;
    this.#options.onBroadcast(record.html, record.seq);
  }

  #receiveSignal(record) {
    if (!this.isLeader || record === null || !SIGNALS.has(record.kind)) return;
    this.#options.onSignal(record.kind);
  }

  #scheduleTick() {
    if (!this.isShared || this.#listeners.length === 0) return;
    clearTimeout(this.#tickTimer);
    this.#tickTimer = setTimeout(() => this.#tick(), this.#nextTickDelay());
  }

  #tick() {
    if (this.isLeader) this.heartbeat();
    else this.elect();
    this.#scheduleTick();
  }

  #nextTickDelay() {
    const { heartbeatMs, settleMs } = this.#options;
    if (this.isLeader) return heartbeatMs;
    const lease = this.#readLease();
    if (!lease) return heartbeatMs;
    // Wake right when the lease runs out, so a crashed leader is replaced within
    // timeoutMs of its last heartbeat rather than up to one heartbeat later.
    const untilExpiry = lease.expiresAt - Date.now() + 1;
    return Math.max(settleMs, Math.min(heartbeatMs, untilExpiry));
  }

  #setRole(role) {
    const changed = role !== this.#role;
    this.#role = role;
    this.#showRole();
    if (!changed) return;
    this.#scheduleTick();
    this.#options.onRoleChange(role);
  }

  #showRole() {
    const element = this.#options.roleElement;
    if (element) element.dataset.tabRole = this.#role;
  }
}

/** Poll with growing intervals while nothing changes; only the leader runs one. */
export class PollScheduler {
  #options;
  #timer = null;
  #running = false;
  #inFlight = false;

  constructor({
    poll,
    onResult = noop,
    onSchedule = noop,
    onError = noop,
    canPoll = () => true,
    isAnyTabVisible = isVisible,
    random = Math.random,
    initialMs = POLL_DEFAULTS.initialMs,
    multiplier = POLL_DEFAULTS.multiplier,
    maxMs = POLL_DEFAULTS.maxMs,
    jitter = POLL_DEFAULTS.jitter,
    maxAttempts = POLL_DEFAULTS.maxAttempts,
    pollTimeoutMs = POLL_DEFAULTS.pollTimeoutMs,
  }) {
    this.#options = {
      poll,
      onResult,
      onSchedule,
      onError,
      canPoll,
      isAnyTabVisible,
      random,
      initialMs,
      multiplier,
      maxMs,
      jitter,
      maxAttempts,
      pollTimeoutMs,
    };
    this.intervalMs = initialMs;
    this.unchangedPolls = 0;
    this.paused = false;
    this.nextPollAt = null;
  }

  get running() {
    return this.#running;
  }

  /** Start polling from the initial interval, or at once. */
  start({ atOnce = false } = {}) {
    this.#running = true;
    this.#reset();
    this.scheduleNextPoll(atOnce ? 0 : undefined);
  }

  stop() {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.nextPollAt = null;
    this.#announce();
  }

  /** A user action: back to the initial interval, resuming if paused. */
  noteAction() {
    this.#reset();
    if (this.#running && !this.#inFlight) this.scheduleNextPoll();
  }

  /** A tab became visible: back to the initial interval and poll at once. */
  wake() {
    this.#reset();
    if (this.#running && !this.#inFlight) this.scheduleNextPoll(0);
  }

  /** A tab regained focus: poll at once if polling had paused. */
  resumeIfPaused() {
    if (this.paused) this.wake();
  }

  /** Arm the timer for the next poll and tell the page when it will be. */
  scheduleNextPoll(delayMs = this.#delayMs()) {
    clearTimeout(this.#timer);
    this.nextPollAt = Date.now() + delayMs;
    this.#timer = setTimeout(() => this.#pollOnce(), delayMs);
    this.#announce(delayMs);
  }

  /** Step the backoff ladder after a poll. */
  recordResult(changed) {
    if (changed) {
      this.#reset();
      return;
    }
    this.unchangedPolls += 1;
    this.intervalMs = nextInterval(this.intervalMs, this.#options);
    this.paused = this.unchangedPolls >= this.#options.maxAttempts;
  }

  #delayMs() {
    const { maxMs, jitter, random, isAnyTabVisible } = this.#options;
    // Nobody is looking: poll as rarely as allowed until a tab becomes visible.
    const base = isAnyTabVisible() ? this.intervalMs : maxMs;
    return withJitter(base, jitter, random);
  }

  #reset() {
    this.intervalMs = this.#options.initialMs;
    this.unchangedPolls = 0;
    this.paused = false;
  }

  async #pollOnce() {
    this.#timer = null;
    this.nextPollAt = null;
    // Leadership lost since the timer was armed: the role change stops this scheduler.
    if (!this.#running || !this.#options.canPoll()) return;
    this.#inFlight = true;
    let changed = false;
    try {
      const result = await this.#pollWithTimeout();
      // `changed` (a change of state) steers the backoff; `html` is new content to show,
      // which may come without a change of state (progress).
      changed = Boolean(result?.changed);
      // A poll that outlived this tab's leadership is not broadcast over the new leader's.
      const fresh = this.#running && typeof result?.html === "string";
      if (fresh) this.#options.onResult(result.html);
    } catch (error) {
      // Server errors count as unchanged polls: keep polling, with backoff.
      this.#options.onError(error);
    } finally {
      this.#inFlight = false;
    }
    if (!this.#running) return;
    this.recordResult(changed);
    if (this.paused) this.#announce();
    else this.scheduleNextPoll();
  }

  /** Run one poll, abandoning it after pollTimeoutMs so that a hung request cannot stop polling. */
  #pollWithTimeout() {
    const { poll, pollTimeoutMs } = this.#options;
    const controller = new AbortController();
    let timer = null;
    const timeout = new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`The poll took longer than ${pollTimeoutMs} ms.`));
      }, pollTimeoutMs);
    });
    const attempt = Promise.resolve().then(() => poll({ signal: controller.signal }));
    return Promise.race([attempt, timeout]).finally(() => clearTimeout(timer));
  }

  #announce(delayMs = null) {
    const { nextPollAt, intervalMs, paused, unchangedPolls } = this;
    this.#options.onSchedule({ nextPollAt, delayMs, intervalMs, paused, unchangedPolls });
  }
}

/**
 * Coordinate this tab with the others: the leader polls with `poll({signal})`
 * (which resolves to {changed, html}) and every tab gets fresh results in `onResult`.
 */
export function startTabs({
  namespace,
  poll,
  onResult = noop,
  onRoleChange = noop,
  onSchedule = noop,
  onError = noop,
  heartbeatMs,
  timeoutMs,
  hiddenTimeoutMs,
  settleMs,
  ...pollOptions
}) {
  let pollAtOnceWhenLeading = false;
  const scheduler = new PollScheduler({
    ...pollOptions,
    poll,
    onSchedule,
    onError,
    canPoll: () => tabs.holdsLease(),
    onResult: (html) => tabs.broadcast(html),
  });
  const tabs = new TabCoordinator({
    namespace,
    heartbeatMs,
    timeoutMs,
    hiddenTimeoutMs,
    settleMs,
    onBroadcast: onResult,
    onSignal: (kind) => followSignal(scheduler, kind),
    onRoleChange(role) {
      if (role === LEADER) scheduler.start({ atOnce: pollAtOnceWhenLeading });
      else scheduler.stop();
      pollAtOnceWhenLeading = false;
      onRoleChange(role);
    },
  });

  // A tab that becomes visible polls at once: through the leader, or by taking the lead.
  function wake() {
    if (tabs.isLeader) scheduler.wake();
    else if (tabs.elect()) pollAtOnceWhenLeading = true;
    else tabs.signal("wake");
  }

  function noteAction() {
    tabs.signal("action");
  }

  const onVisibilityChange = () => isVisible() && wake();
  const onFocus = () => tabs.signal("focus");
  document.addEventListener("visibilitychange", onVisibilityChange);
  window.addEventListener("focus", onFocus);
  tabs.start();

  function stop() {
    document.removeEventListener("visibilitychange", onVisibilityChange);
    window.removeEventListener("focus", onFocus);
    scheduler.stop();
    tabs.stop();
  }

  return { tabs, scheduler, wake, noteAction, stop };
}

function followSignal(scheduler, kind) {
  if (kind === "action") scheduler.noteAction();
  else if (kind === "wake") scheduler.wake();
  else if (kind === "focus") scheduler.resumeIfPaused();
}
