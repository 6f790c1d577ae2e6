// Storage records: the JSON records the dashboard's tabs leave for each other in
// localStorage, under `coordhub:<namespace>:<name>`:
//   leader     {tabId, epoch, expiresAt, hidden}   the lease (see lease.js)
//   broadcast  {seq, html}                          the leader's last result (see messages.js)
//   signal     {kind, nonce}                        a follower's news for the leader
//   tab:<id>   {seenAt, hidden}                     one open tab (see presence.js)
//   pause      {tabId, since}                       the user paused updates (see pause.js)
//
// Everything read back was written by another tab (or by anything else on this
// origin) and is untrusted: it is parsed as JSON and checked field by field, and
// a record that fails any check reads as absent. Nothing is evaluated here.
//
// Without localStorage (disabled storage makes access throw) there is nothing to
// share: `shared` is false, reads find nothing and writes go nowhere.

export const SIGNAL_KINDS = new Set(["action", "wake", "focus"]);
// Bounds on the counters in records. Real tabs count one up per claim or broadcast
// and never come near them (a broadcast a second for 68 years); a planted record
// beyond them reads as absent, else the next number would leave the safe integers
// (where +1 no longer counts) and every later record would fail its check.
export const MAX_EPOCH = 2 ** 31 - 1;
export const MAX_SEQ = 2 ** 31 - 1;
// Tab ids are randomId()s; the key of a tab's presence record names it.
const TAB_NAME = /^tab:([0-9a-f]{16})$/;
// How many keys a count of the tabs looks at, at most: the origin's keys are
// coordhub's, a handful per namespace, so only a flood of planted keys comes near
// it, and that makes the count short rather than the tab slow.
const MAX_SCANNED_KEYS = 2000;

const NAMES = ["leader", "broadcast", "signal", "pause"];
const VALIDATORS = {
  leader: isLease,
  broadcast: isBroadcast,
  signal: isSignal,
  pause: isPause,
  tab: isPresence,
};

/** Return window.localStorage, or null where using it throws (disabled storage). */
function openStorage() {
  try {
    const storage = window.localStorage;
    const probe = "coordhub:probe";
    storage.setItem(probe, probe);
    storage.removeItem(probe);
    return storage;
  } catch {
    return null;
  }
}

/** A random hex id: a tab's id, or the nonce that makes a record a new value. */
export function randomId() {
  // getRandomValues, not randomUUID: the latter needs a secure context.
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Read, write and validate one namespace's records (one per signed-in user). */
export class Records {
  #storage;
  #prefix;

  constructor(namespace) {
    if (!namespace) {
      throw new TypeError("Records need a namespace, such as the signed-in user's id.");
    }
    this.#storage = openStorage();
    this.#prefix = `coordhub:${namespace}:`;
  }

  /** Whether tabs share localStorage; without it every tab is on its own. */
  get shared() {
    return this.#storage !== null;
  }

  /** Return the named record ("leader", "broadcast", "tab:<id>" …) if it is valid, else null. */
  read(name) {
    try {
      return this.parse(name, this.#storage?.getItem(this.#prefix + name));
    } catch {
      return null;
    }
  }

  /** Write the named record; return false if it could not be stored. */
  write(name, record) {
    if (!this.shared) return false;
    try {
      this.#storage.setItem(this.#prefix + name, JSON.stringify(record));
      return true;
    } catch {
      // Quota or storage revoked mid-session: followers keep their last result.
      return false;
    }
  }

  remove(name) {
    try {
      this.#storage?.removeItem(this.#prefix + name);
    } catch {
      // Nothing to hand over if storage is gone.
    }
  }

  /** Parse a stored text as the named record; null unless every field checks out. */
  parse(name, text) {
    if (typeof text !== "string") return null;
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      return null;
    }
    const isValid = VALIDATORS[kindOf(name)];
    return value !== null && typeof value === "object" && isValid?.(value) ? value : null;
  }

  /**
   * Say which of this namespace's records a storage event changed: "leader",
   * "broadcast", "signal", "pause", "tab" (any tab's presence), "all" (storage was
   * cleared) or null (not ours).
   */
  changed(event) {
    if (!this.shared || event.storageArea !== this.#storage) return null;
    if (event.key === null) return "all";
    if (!event.key.startsWith(this.#prefix)) return null;
    return kindOf(event.key.slice(this.#prefix.length));
  }

  /** Yield this namespace's presence records as [tabId, record or null], in the first keys. */
  *tabs() {
    if (!this.shared) return;
    try {
      const scanned = Math.min(this.#storage.length, MAX_SCANNED_KEYS);
      for (let index = 0; index < scanned; index += 1) {
        const key = this.#storage.key(index);
        if (key === null || !key.startsWith(this.#prefix)) continue;
        const name = key.slice(this.#prefix.length);
        const tabId = TAB_NAME.exec(name)?.[1];
        if (tabId !== undefined) yield [tabId, this.parse(name, this.#storage.getItem(key))];
      }
    } catch {
      // Storage revoked mid-scan: count what was read.
    }
  }

  /** Remove every key of the namespace (at logout: cached fragments belong to the user). */
  clear() {
    if (!this.shared) return;
    const keys = [];
    for (let index = 0; index < this.#storage.length; index += 1) {
      const key = this.#storage.key(index);
      if (key !== null && key.startsWith(this.#prefix)) keys.push(key);
    }
    keys.forEach((key) => this.#storage.removeItem(key));
  }
}

/** "leader", "tab" for "tab:<id>", …; null for a name that is none of the records. */
function kindOf(name) {
  if (NAMES.includes(name)) return name;
  return TAB_NAME.test(name) ? "tab" : null;
}

function isLease(value) {
  return (
    typeof value.tabId === "string" &&
    Number.isSafeInteger(value.epoch) &&
    value.epoch >= 0 &&
    value.epoch <= MAX_EPOCH &&
    Number.isFinite(value.expiresAt)
  );
}

function isBroadcast(value) {
  const { seq, html } = value;
  return Number.isSafeInteger(seq) && seq > 0 && seq <= MAX_SEQ && typeof html === "string";
}

function isSignal(value) {
  return SIGNAL_KINDS.has(value.kind);
}

function isPause(value) {
  const { tabId, since } = value;
  return typeof tabId === "string" && tabId.length <= 64 && Number.isFinite(since);
}

function isPresence(value) {
  return Number.isFinite(value.seenAt) && typeof value.hidden === "boolean";
}
