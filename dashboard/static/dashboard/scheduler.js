// The poll scheduler: when the leader polls next. It steps through the backoff
// ladder the server defines (Config.poll_ladder_ms, rendered as
// data-poll-ladder-ms) one step per unchanged poll, stays on the last step, and
// pauses after maxAttempts unchanged polls until a user action or focus. A change
// of state or a user action starts the ladder again. It knows nothing of tabs or
// storage: the coordinator says whether this tab may poll and takes the results.
//
// Push mode (`live`): while the nudge socket is up (socket.js), the leader polls
// on each nudge and otherwise only a safety poll at the longest interval, never
// stepping the ladder and never pausing, so a tab left alone for hours still
// shows an operation's end. A nudge during a poll asks for one more poll right
// after it. When the socket drops, polling goes back to the first ladder step.

const POLL_DEFAULTS = Object.freeze({
  jitter: 0.1,
  maxAttempts: 100,
  pollTimeoutMs: 30000,
});

/** Spread a delay by ±jitter so many clients do not poll in lockstep. */
function withJitter(ms, jitter) {
  return Math.round(ms * (1 + jitter * (2 * Math.random() - 1)));
}

/** Poll on the backoff ladder while nothing changes; only the leader runs one. */
export class PollScheduler {
  #options;
  #timer = null;
  #running = false;
  #inFlight = false;
  #pollAgain = false;

  constructor({
    poll,
    ladderMs,
    onResult = () => {},
    onSchedule = () => {},
    onError = () => {},
    canPoll = () => true,
    isAnyTabVisible = () => true,
    jitter = POLL_DEFAULTS.jitter,
    maxAttempts = POLL_DEFAULTS.maxAttempts,
    pollTimeoutMs = POLL_DEFAULTS.pollTimeoutMs,
  }) {
    if (!Array.isArray(ladderMs) || ladderMs.length === 0) {
      throw new TypeError("PollScheduler needs the backoff ladder (data-poll-ladder-ms).");
    }
    this.#options = {
      poll,
      ladderMs,
      onResult,
      onSchedule,
      onError,
      canPoll,
      isAnyTabVisible,
      jitter,
      maxAttempts,
      pollTimeoutMs,
    };
    this.intervalMs = ladderMs[0];
    this.unchangedPolls = 0;
    this.paused = false;
    this.live = false;
    this.nextPollAt = null;
  }

  /** Start polling from the first step of the ladder, or at once. */
  start({ atOnce = false } = {}) {
    this.#running = true;
    this.#reset();
    this.#scheduleNextPoll(atOnce ? 0 : undefined);
  }

  stop() {
    this.#running = false;
    // Whoever owns the socket closes it with this scheduler; the next start is on the ladder.
    this.live = false;
    this.#pollAgain = false;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.nextPollAt = null;
    this.#announce();
  }

  /** A user action: back to the first step, resuming if paused (nudges carry news while live). */
  noteAction() {
    if (this.live) return;
    this.#reset();
    if (!this.#running || this.#inFlight) return;
    const delayMs = this.#delayMs();
    // A poll armed sooner stays: the click on Resume that armed one at once is an action too.
    if (this.#timer !== null && this.nextPollAt <= Date.now() + delayMs) return;
    this.#scheduleNextPoll(delayMs);
  }

  /** A tab became visible: back to the first step and poll at once (not needed while live). */
  wake() {
    if (this.live) return;
    this.#reset();
    if (this.#running && !this.#inFlight) this.#scheduleNextPoll(0);
  }

  /** A tab regained focus: poll at once if polling had paused. */
  resumeIfPaused() {
    if (this.paused) this.wake();
  }

  /** The nudge socket went up (push mode) or down (the ladder, from its first step, at once). */
  setLive(up) {
    if (up === this.live) return;
    this.live = up;
    this.#reset();
    if (!this.#running) return;
    // Up: fetch what changed while the socket was down, then wait for nudges.
    if (up) this.#pollNow();
    else if (!this.#inFlight) this.#scheduleNextPoll();
  }

  /** The server says something changed: poll now, or once more right after the poll in flight. */
  nudge() {
    if (this.#running) this.#pollNow();
  }

  // Without a timer: a nudge is acted on at once, even where timers are throttled.
  #pollNow() {
    if (this.#inFlight) {
      this.#pollAgain = true;
      return;
    }
    clearTimeout(this.#timer);
    void this.#pollOnce();
  }

  /** Arm the timer for the next poll and tell the page when it will be. */
  #scheduleNextPoll(delayMs = this.#delayMs()) {
    clearTimeout(this.#timer);
    this.nextPollAt = Date.now() + delayMs;
    this.#timer = setTimeout(() => this.#pollOnce(), delayMs);
    this.#announce(delayMs);
  }

  /** Step the backoff ladder after a poll. */
  #recordResult(changed) {
    if (changed) {
      this.#reset();
      return;
    }
    const { ladderMs, maxAttempts } = this.#options;
    this.unchangedPolls += 1;
    this.intervalMs = ladderMs[Math.min(this.unchangedPolls, ladderMs.length - 1)];
    this.paused = this.unchangedPolls >= maxAttempts;
  }

  #delayMs() {
    const { ladderMs, jitter, isAnyTabVisible } = this.#options;
    // Live, the poll is a safety net. Nobody looking: poll as rarely as allowed until a
    // tab becomes visible.
    const base = this.live || !isAnyTabVisible() ? ladderMs.at(-1) : this.intervalMs;
    return withJitter(base, jitter);
  }

  #reset() {
    this.intervalMs = this.#options.ladderMs[0];
    this.unchangedPolls = 0;
    this.paused = false;
  }

  async #pollOnce() {
    this.#timer = null;
    this.nextPollAt = null;
    // Leadership lost since the timer was armed: the role change stops this scheduler.
    if (!this.#running || !this.#options.canPoll()) return;
    this.#inFlight = true;
    // Only polls on the ladder step it; one that began or ended live does not.
    const onLadder = !this.live;
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
    if (onLadder && !this.live) this.#recordResult(changed);
    if (this.#pollAgain) {
      this.#pollAgain = false;
      void this.#pollOnce();
    } else if (this.paused) this.#announce();
    else this.#scheduleNextPoll();
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
    const { nextPollAt, intervalMs, paused, unchangedPolls, live } = this;
    this.#options.onSchedule({ nextPollAt, delayMs, intervalMs, paused, unchangedPolls, live });
  }
}
