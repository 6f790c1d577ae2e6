// The nudge socket: the leader tab's WebSocket to the server's change feed
// (data-socket-url, "/ws/live/"). The server sends nudges, never data: each frame
// is {"version": <number>}, meaning "something changed"; the leader then fetches
// the live fragment as it would on a poll, so who sees what stays decided in one
// place. The tab sends nothing.
//
// It reports the socket up and down and each nudge through callbacks, and
// reconnects after a drop with exponential backoff and jitter (1 s doubling to
// 30 s, ±20%), so that a restarted server is not met by every tab at the same
// instant. A connection that stayed up for stableMs starts the backoff again
// from the first step. Closes that a retry cannot mend (not signed in, a forged
// origin, no such path) end the attempts: the tab keeps polling as without
// WebSocket support. Frames are untrusted: anything but a short JSON object with
// a finite numeric `version` is ignored.

const SOCKET_DEFAULTS = Object.freeze({
  firstRetryMs: 1000,
  maxRetryMs: 30000,
  jitter: 0.2,
  stableMs: 10000,
});
// A nudge is a few dozen characters; a longer frame is not one, and is not parsed.
const MAX_FRAME_LENGTH = 256;
// The server's close codes: 4401 not signed in, 4403 forged origin, 4404 unknown path.
const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404]);
// 4429: too many sockets for this client; another try soon would be refused too.
const TOO_MANY_SOCKETS = 4429;
const NORMAL_CLOSURE = 1000;

/** Whether this browser has WebSocket at all (without it the tab only polls). */
export function socketSupported() {
  return typeof globalThis.WebSocket === "function";
}

/** "/ws/live/" on this page's origin, as ws: under http and wss: under https. */
export function socketAddress(path, base = globalThis.location.href) {
  const url = new URL(path, base);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  return url.href;
}

/** The version a frame carries, or null for anything that is not a nudge. */
export function parseNudge(data) {
  if (typeof data !== "string" || data.length > MAX_FRAME_LENGTH) return null;
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return null;
  }
  if (frame === null || typeof frame !== "object" || Array.isArray(frame)) return null;
  const version = Object.hasOwn(frame, "version") ? frame.version : undefined;
  return typeof version === "number" && Number.isFinite(version) ? version : null;
}

/** Spread a delay by ±jitter so that tabs do not reconnect in lockstep. */
function withJitter(ms, jitter) {
  return Math.round(ms * (1 + jitter * (2 * Math.random() - 1)));
}

/** Hold one WebSocket to the change feed, reconnecting with backoff until stopped. */
export class NudgeSocket {
  #url;
  #options;
  #socket = null;
  #running = false;
  #retryTimer = null;
  #retryMs;
  #openedAt = null;

  constructor({
    url,
    onUp = () => {},
    onDown = () => {},
    onNudge = () => {},
    onRetry = () => {},
    createSocket = (address) => new WebSocket(address),
    firstRetryMs = SOCKET_DEFAULTS.firstRetryMs,
    maxRetryMs = SOCKET_DEFAULTS.maxRetryMs,
    jitter = SOCKET_DEFAULTS.jitter,
    stableMs = SOCKET_DEFAULTS.stableMs,
  }) {
    this.#url = url;
    this.#options = {
      onUp,
      onDown,
      onNudge,
      onRetry,
      createSocket,
      firstRetryMs,
      maxRetryMs,
      jitter,
      stableMs,
    };
    this.#retryMs = firstRetryMs;
  }

  /** Whether the socket is open now. */
  get isUp() {
    return this.#openedAt !== null;
  }

  /** Connect, and keep reconnecting after drops, until stop(). */
  start() {
    if (this.#running) return;
    this.#running = true;
    this.#retryMs = this.#options.firstRetryMs;
    this.#connect();
  }

  /** Close for good, without reporting the socket down: the caller stopped wanting it. */
  stop() {
    this.#running = false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#openedAt = null;
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(NORMAL_CLOSURE);
  }

  #connect() {
    this.#retryTimer = null;
    let socket;
    try {
      socket = this.#options.createSocket(this.#url);
    } catch {
      // A URL the browser refuses (a bad data-socket-url) fails the same way on every try.
      this.#running = false;
      return;
    }
    this.#socket = socket;
    // Events of a socket this tab has replaced or closed are ignored.
    socket.addEventListener("open", () => socket === this.#socket && this.#onOpen());
    socket.addEventListener("message", (event) => socket === this.#socket && this.#onFrame(event));
    socket.addEventListener("close", (event) => socket === this.#socket && this.#onClose(event));
  }

  #onOpen() {
    this.#openedAt = Date.now();
    this.#options.onUp();
  }

  #onFrame(event) {
    const version = parseNudge(event.data);
    if (version !== null) this.#options.onNudge(version);
  }

  #onClose(event) {
    const wasUp = this.isUp;
    const stayedUp = wasUp && Date.now() - this.#openedAt >= this.#options.stableMs;
    this.#socket = null;
    this.#openedAt = null;
    // A handshake that failed was never up: the page already polls on the ladder.
    if (wasUp) this.#options.onDown(event.code);
    if (!this.#running) return;
    if (FINAL_CLOSE_CODES.has(event.code)) {
      this.#running = false;
      return;
    }
    if (stayedUp) this.#retryMs = this.#options.firstRetryMs;
    if (event.code === TOO_MANY_SOCKETS) this.#retryMs = this.#options.maxRetryMs;
    this.#scheduleRetry();
  }

  #scheduleRetry() {
    const { jitter, maxRetryMs } = this.#options;
    const delayMs = withJitter(this.#retryMs, jitter);
    this.#retryMs = Math.min(this.#retryMs * 2, maxRetryMs);
    this.#retryTimer = setTimeout(() => this.#connect(), delayMs);
    this.#options.onRetry(delayMs);
  }
}
