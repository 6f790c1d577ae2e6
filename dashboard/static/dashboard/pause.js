// The shared pause: the user's Pause in any tab pauses updates in every tab of
// the namespace, and Resume in any tab resumes them all. It is the `pause` record
// {tabId, since} (see storage.js): `tabId` says which tab paused, so that each
// tab can say "in this tab" or "from another tab", and `since` makes each pause a
// new value. A valid record means paused; anything else, absent or failing its
// checks (planted garbage), means not paused, so a planted record can pause the
// tabs only as a click on Pause could, and never keeps them from resuming.
//
// A pause lasts while a tab is open: a tab that opens when no other is drops the
// pause it finds (left by tabs that were all closed), so that a new visit never
// starts paused. Sign-out clears it with the rest of the namespace.

/** Pause and resume the updates of every tab in a namespace, following the other tabs. */
export class SharedPause {
  #records;
  #tabId;
  #onChange;
  #pause = null;
  #onStorage = (event) => this.#follow(event);

  constructor({ records, tabId, onChange = () => {} }) {
    this.#records = records;
    this.#tabId = tabId;
    this.#onChange = onChange;
  }

  /** {paused, pausedHere}: whether updates are paused, and whether this tab paused them. */
  get state() {
    const paused = this.#pause !== null;
    return { paused, pausedHere: paused && this.#pause.tabId === this.#tabId };
  }

  get paused() {
    return this.#pause !== null;
  }

  /** Take up the other tabs' pause, if any, and follow their pauses from now on. */
  start({ othersOpen }) {
    window.addEventListener("storage", this.#onStorage);
    const found = this.#records.read("pause");
    if (found !== null && !othersOpen) this.#records.remove("pause");
    else this.#pause = found;
    return this;
  }

  stop() {
    window.removeEventListener("storage", this.#onStorage);
  }

  /** Pause updates in every tab (without shared storage, in this one). */
  pause() {
    const pause = { tabId: this.#tabId, since: Date.now() };
    this.#records.write("pause", pause);
    this.#set(pause);
  }

  /** Resume updates in every tab. */
  resume() {
    this.#records.remove("pause");
    this.#set(null);
  }

  #follow(event) {
    const changed = this.#records.changed(event);
    if (changed === "pause" || changed === "all") this.#set(this.#records.read("pause"));
  }

  #set(pause) {
    const before = this.state;
    this.#pause = pause;
    const after = this.state;
    if (before.paused !== after.paused || before.pausedHere !== after.pausedHere) {
      this.#onChange(after);
    }
  }
}
