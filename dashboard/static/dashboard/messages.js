// Cross-tab messages: the leader broadcasts each result to every tab, and the
// other tabs send it signals (a user action, a tab woke up, a tab got focus).
//
// A broadcast is the `broadcast` record {seq, html} (see storage.js), numbered
// one past the last number any tab has seen, so each is a new value (one storage
// event per broadcast) and a tab drops anything older than what it shows. A
// signal is the `signal` record {kind, nonce}; the nonce makes every signal a new
// value, so repeats fire storage events too. Only strings are handed on; nothing
// is evaluated or inserted into the DOM here.

import { MAX_SEQ, SIGNAL_KINDS, randomId } from "./storage.js";

/** Carry the leader's results to every tab and the other tabs' signals to the leader. */
export class Messages {
  #records;
  #options;
  #lastSeq = 0;
  #onStorage = (event) => this.#receive(event);

  constructor({ records, isLeader, onBroadcast = () => {}, onSignal = () => {} }) {
    this.#records = records;
    this.#options = { isLeader, onBroadcast, onSignal };
  }

  /** Listen to other tabs, and hand on the last broadcast at once instead of after a poll. */
  start() {
    window.addEventListener("storage", this.#onStorage);
    this.#receiveBroadcast(this.#records.read("broadcast"));
    return this;
  }

  stop() {
    window.removeEventListener("storage", this.#onStorage);
  }

  /** Publish a result to every tab, this one included, under the next sequence number. */
  broadcast(html) {
    const stored = this.#records.read("broadcast");
    let seq = Math.max(this.#lastSeq, stored?.seq ?? 0) + 1;
    if (seq > MAX_SEQ) {
      // Counted up to the bound (a planted record): start again from 1. Removing the
      // record first tells every tab to forget the numbers it saw, as at a logout.
      this.#records.remove("broadcast");
      this.forget();
      seq = 1;
    }
    const record = { seq, html: String(html) };
    this.#records.write("broadcast", record);
    // Storage events never reach the writing tab, so the leader hands itself the result.
    this.#receiveBroadcast(record);
    return record.seq;
  }

  /** Tell the leader about something that happened in this tab: "action", "wake" or "focus". */
  signal(kind) {
    if (!SIGNAL_KINDS.has(kind)) throw new TypeError(`Unknown signal ${JSON.stringify(kind)}.`);
    if (this.#options.isLeader()) this.#options.onSignal(kind);
    else this.#records.write("signal", { kind, nonce: randomId() });
  }

  /** Forget the numbers seen (the namespace was cleared): the next leader counts from 1. */
  forget() {
    this.#lastSeq = 0;
  }

  #receive(event) {
    const changed = this.#records.changed(event);
    // Removed (a logout in another tab): the next leader counts again from 1.
    if (changed === "all" || (changed === "broadcast" && event.newValue === null)) {
      this.forget();
      return;
    }
    if (changed !== "broadcast" && changed !== "signal") return;
    const record = this.#records.parse(changed, event.newValue);
    if (changed === "broadcast") this.#receiveBroadcast(record);
    else this.#receiveSignal(record);
  }

  #receiveBroadcast(record) {
    if (record === null || record.seq <= this.#lastSeq) return;
    this.#lastSeq = record.seq;
    this.#options.onBroadcast(record.html, record.seq);
  }

  #receiveSignal(record) {
    if (record !== null && this.#options.isLeader()) this.#options.onSignal(record.kind);
  }
}
