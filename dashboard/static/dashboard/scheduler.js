// The poll scheduler: when the leader polls next. It steps through the backoff
// ladder the server defines (Config.poll_ladder_ms, rendered as
// data-poll-ladder-ms) one step per unchanged poll, stays on the last step, and
// pauses after maxAttempts unchanged polls until a user action or focus. A change
// of state or a user action starts the ladder again. It knows nothing of tabs or
// storage: the coordinator says whether this tab may poll and takes the results.

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
    clearTimeout(this.#timer);
    this.#timer = null;
    this.nextPollAt = null;
    this.#announce();
  }

  /** A user action: back to the first step, resuming if paused. */
  noteAction() {
    this.#reset();
    if (this.#running && !this.#inFlight) this.#scheduleNextPoll();
  }

  /** A tab became visible: back to the first step and poll at once. */
  wake() {
    this.#reset();
    if (this.#running && !this.#inFlight) this.#scheduleNextPoll(0);
  }

  /** A tab regained focus: poll at once if polling had paused. */
  resumeIfPaused() {
    if (this.paused) this.wake();
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
    // Nobody is looking: poll as rarely as allowed until a tab becomes visible.
    const base = isAnyTabVisible() ? this.intervalMs : ladderMs.at(-1);
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
    this.#recordResult(changed);
    if (this.paused) this.#announce();
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
    const { nextPollAt, intervalMs, paused, unchangedPolls } = this;
    this.#options.onSchedule({ nextPollAt, delayMs, intervalMs, paused, unchangedPolls });
  }
}
