// Leader election: one tab per namespace holds a lease, the `leader` record
// {tabId, epoch, expiresAt, hidden} (see storage.js), and only it polls.
//
// The leader renews the lease every heartbeatMs; a lease nobody renewed by
// expiresAt is free. Every claim takes a higher epoch, so a tab that finds another
// tab's lease with an epoch at least its own knows it lost and steps down.
// localStorage has no compare-and-set: a claim is written, then re-read after
// SETTLE_MS (long enough for rival writes to arrive as storage events) before the
// tab leads; whichever write the browser applied last is the one every tab reads.
//
// Two leaders never poll together for longer than one heartbeat: a leader steps
// down as soon as a storage event shows a newer claim, re-reads the lease before
// each heartbeat, and re-reads it right before each poll (holdsLease).
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
// Without localStorage every tab leads itself.

import { MAX_EPOCH, randomId } from "./storage.js";

export const LEADER = "leader";
const FOLLOWER = "follower";

export const LEASE_DEFAULTS = Object.freeze({
  heartbeatMs: 3000,
  timeoutMs: 10000,
  hiddenTimeoutMs: 75000,
});
// How long a claim waits for rival writes before it leads.
const SETTLE_MS = 50;

/** Whether someone can see this tab. */
export function isVisible() {
  return document.visibilityState === "visible";
}

/** Elect one leader tab per namespace and keep its lease alive. */
export class LeaderElection {
  #records;
  #options;
  #tabId;
  #role = FOLLOWER;
  #epoch = 0;
  #seenEpoch = 0;
  #claimEpoch = null;
  #settleTimer = null;
  #tickTimer = null;
  #listeners = [];

  constructor({
    records,
    tabId = randomId(),
    onRoleChange = () => {},
    heartbeatMs = LEASE_DEFAULTS.heartbeatMs,
    timeoutMs = LEASE_DEFAULTS.timeoutMs,
    hiddenTimeoutMs = LEASE_DEFAULTS.hiddenTimeoutMs,
  }) {
    this.#records = records;
    this.#tabId = tabId;
    this.#options = { onRoleChange, heartbeatMs, timeoutMs, hiddenTimeoutMs };
  }

  get isLeader() {
    return this.#role === LEADER;
  }

  /** Follow the lease and the page's lifecycle, and run for leadership. */
  start() {
    this.#listen(window, "storage", (event) => this.#onStorage(event));
    this.#listen(window, "pagehide", () => this.resign());
    this.#listen(window, "pageshow", (event) => event.persisted && this.elect());
    this.#listen(document, "freeze", () => this.resign());
    this.#listen(document, "resume", () => this.elect());
    this.#listen(document, "visibilitychange", () => this.#onVisibilityChange());
    if (!this.#records.shared) {
      this.#setRole(LEADER);
      return this;
    }
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
    if (!this.#records.shared || this.isLeader) return false;
    if (this.#claimEpoch !== null) return true;
    const lease = this.#readLease();
    if (!this.#isFreeForMe(lease)) return false;
    this.#claim(lease);
    return this.#claimEpoch !== null;
  }

  /** Renew this tab's lease, or step down if another tab holds a newer one. */
  heartbeat() {
    if (!this.#records.shared || !this.isLeader) return;
    const lease = this.#readLease();
    if (this.#isRivalClaim(lease)) {
      this.#setRole(FOLLOWER);
      return;
    }
    this.#writeLease(this.#epoch);
  }

  /** Give up the lease so that another tab takes over at once (page closing or frozen). */
  resign() {
    if (!this.#records.shared) return;
    clearTimeout(this.#settleTimer);
    this.#claimEpoch = null;
    if (this.#readLease()?.tabId === this.#tabId) this.#records.remove("leader");
    this.#setRole(FOLLOWER);
  }

  /** Confirm, right before a poll, that this tab still holds the lease. */
  holdsLease() {
    if (!this.#records.shared) return true;
    if (!this.isLeader) return false;
    this.#defendLease(this.#readLease());
    return this.isLeader;
  }

  #listen(target, type, listener) {
    target.addEventListener(type, listener);
    this.#listeners.push([target, type, listener]);
  }

  #readLease() {
    const lease = this.#records.read("leader");
    if (lease) this.#seenEpoch = Math.max(this.#seenEpoch, lease.epoch);
    return lease;
  }

  #writeLease(epoch) {
    const hidden = !isVisible();
    const { timeoutMs, hiddenTimeoutMs } = this.#options;
    const expiresAt = Date.now() + (hidden ? hiddenTimeoutMs : timeoutMs);
    this.#seenEpoch = Math.max(this.#seenEpoch, epoch);
    this.#records.write("leader", { tabId: this.#tabId, epoch, expiresAt, hidden });
  }

  #isLive(lease) {
    const now = Date.now();
    const { timeoutMs, hiddenTimeoutMs } = this.#options;
    // A lease promising more than the longest term is bogus (planted, or a broken
    // clock) and must not block elections forever.
    return now <= lease.expiresAt && lease.expiresAt <= now + hiddenTimeoutMs + timeoutMs;
  }

  #isFreeForMe(lease) {
    if (!lease || lease.tabId === this.#tabId || !this.#isLive(lease)) return true;
    // Leadership follows visibility, so the tab someone is looking at polls on time.
    return lease.hidden === true && isVisible();
  }

  #isRivalClaim(lease) {
    return lease !== null && lease.tabId !== this.#tabId && lease.epoch >= this.#epoch;
  }

  #claim(lease) {
    // Capped: a claim at the bound ties with the lease it takes, and ties go to
    // whichever write lands last, so the tabs still elect one leader.
    const epoch = Math.min(Math.max(this.#seenEpoch, lease?.epoch ?? 0) + 1, MAX_EPOCH);
    this.#writeLease(epoch);
    if (this.#readLease()?.tabId !== this.#tabId) return;
    this.#claimEpoch = epoch;
    this.#settleTimer = setTimeout(() => this.#verifyClaim(epoch), SETTLE_MS);
  }

  #verifyClaim(epoch) {
    this.#settleTimer = null;
    this.#claimEpoch = null;
    const lease = this.#readLease();
    if (lease?.tabId !== this.#tabId || lease.epoch !== epoch) return;
    this.#epoch = epoch;
    this.#setRole(LEADER);
  }

  #defendLease(lease) {
    if (lease?.tabId === this.#tabId && lease.epoch === this.#epoch) return;
    if (this.#isRivalClaim(lease)) {
      this.#setRole(FOLLOWER);
      return;
    }
    // Removed, or overwritten by a stale leader that has not noticed it lost: put it back.
    this.#writeLease(this.#epoch);
  }

  #onStorage(event) {
    const changed = this.#records.changed(event);
    if (changed !== "leader" && changed !== "all") return;
    const lease = this.#readLease();
    if (this.isLeader) this.#defendLease(lease);
    else this.elect();
    this.#scheduleTick();
  }

  #onVisibilityChange() {
    if (!this.#records.shared) return;
    // A leader republishes its visibility so that a visible tab can take a hidden lease.
    if (this.isLeader) this.heartbeat();
    else if (isVisible()) this.elect();
  }

  #scheduleTick() {
    if (!this.#records.shared || this.#listeners.length === 0) return;
    clearTimeout(this.#tickTimer);
    this.#tickTimer = setTimeout(() => this.#tick(), this.#nextTickDelay());
  }

  #tick() {
    if (this.isLeader) this.heartbeat();
    else this.elect();
    this.#scheduleTick();
  }

  #nextTickDelay() {
    const { heartbeatMs } = this.#options;
    if (this.isLeader) return heartbeatMs;
    const lease = this.#readLease();
    if (!lease) return heartbeatMs;
    // Wake right when the lease runs out, so a crashed leader is replaced within
    // timeoutMs of its last heartbeat rather than up to one heartbeat later.
    const untilExpiry = lease.expiresAt - Date.now() + 1;
    return Math.max(SETTLE_MS, Math.min(heartbeatMs, untilExpiry));
  }

  #setRole(role) {
    if (role === this.#role) return;
    this.#role = role;
    this.#scheduleTick();
    this.#options.onRoleChange(role);
  }
}
