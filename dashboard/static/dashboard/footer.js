// The tab footer (dashboard/footer.html): says in plain words where this tab's
// updates come from ("This tab fetches updates for your 3 open tabs", "Updates
// come from another open tab"), when the leader fetches next, and whether the
// updates are paused and from which tab; its button pauses or resumes them in
// every tab. The coordinator (coordinator.js) reports what happens; this module
// only writes the footer.
//
// None of the footer is a live region: its countdown would be read out every
// second, and the role changes whenever the user switches tabs (leadership
// follows visibility). A change of the pause alone is announced, once, through
// the footer's status region, #tab-announcer.

const LEADER = "leader";
const LIVE = "Live: changes arrive as they happen.";
const WAITING = "Polling paused after no change; click or focus to resume.";
const ANNOUNCED = { true: "Updates paused.", false: "Updates resumed." };

/** Write the tab footer from what the coordinator reports. */
export class TabFooter {
  #elements;
  #role = "follower";
  #count = null;
  #pause = null; // {paused, pausedHere}, as the coordinator last reported it
  #schedule = { nextPollAt: null, paused: false, live: false };

  constructor(root = document) {
    this.#elements = {
      role: root.getElementById("tab-role"),
      status: root.getElementById("poll-status"),
      toggle: root.getElementById("poll-toggle"),
      announcer: root.getElementById("tab-announcer"),
    };
    // The countdown, once a second.
    setInterval(() => this.#showSchedule(), 1000);
  }

  /** Call `listener(pause)` when the user presses the button: true for Pause, false for Resume. */
  onToggle(listener) {
    this.#elements.toggle?.addEventListener("click", () => listener(!this.#pause?.paused));
  }

  showRole(role) {
    this.#role = role;
    this.#show();
  }

  /** `count`: {tabs, capped} (see presence.js). */
  showTabCount(count) {
    this.#count = count;
    this.#show();
  }

  showSchedule(schedule) {
    this.#schedule = schedule;
    this.#showSchedule();
  }

  /** `pause`: {paused, pausedHere}; a change after the first report is announced. */
  showPause(pause) {
    const changed = this.#pause !== null && this.#pause.paused !== pause.paused;
    this.#pause = pause;
    if (changed && this.#elements.announcer) {
      this.#elements.announcer.textContent = ANNOUNCED[pause.paused];
    }
    this.#show();
  }

  #show() {
    const { role, toggle } = this.#elements;
    const text = this.#roleText();
    if (role && role.textContent !== text) role.textContent = text;
    if (toggle) toggle.textContent = this.#pause?.paused ? "Resume" : "Pause";
    this.#showSchedule();
  }

  #roleText() {
    if (this.#pause?.paused) {
      return this.#pause.pausedHere ? "Updates paused in this tab." : "Updates paused from another tab.";
    }
    if (this.#role !== LEADER) return "Updates come from another open tab.";
    // Without shared storage, tabs neither count each other nor share updates.
    if (this.#count === null) return "This tab fetches its own updates.";
    const { tabs, capped } = this.#count;
    if (tabs === 1) return "This tab fetches updates; no other tab is open.";
    return `This tab fetches updates for your ${tabs}${capped ? "+" : ""} open tabs.`;
  }

  #showSchedule() {
    const { status } = this.#elements;
    if (!status) return;
    const text = this.#scheduleText();
    if (status.textContent !== text) status.textContent = text;
    status.hidden = text === "";
  }

  // Only the leader fetches, so only its footer says when.
  #scheduleText() {
    const { nextPollAt, paused, live } = this.#schedule;
    if (this.#pause?.paused || this.#role !== LEADER) return "";
    if (paused) return WAITING;
    if (live) return LIVE;
    if (!nextPollAt) return "";
    const seconds = Math.max(0, Math.round((nextPollAt - Date.now()) / 1000));
    return `Next poll in ${seconds} s.`;
  }
}
