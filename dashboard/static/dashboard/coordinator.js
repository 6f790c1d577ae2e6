// The cross-tab coordinator: ties the lease (lease.js), the messages between tabs
// (messages.js), the poll scheduler (scheduler.js), the nudge socket
// (socket.js), the count of open tabs (presence.js) and the user's pause, shared
// by every tab (pause.js), together, so that the leader tab alone polls and
// holds a socket, and every tab gets each result. The leader opens the socket
// when it starts to lead and closes it when it stops (a hand-over, pagehide,
// stop, the user's pause in any tab); followers open none. Without WebSocket or
// a socket URL the leader only polls. The page learns what happens through the
// callbacks it passes (onResult, onRoleChange, onSchedule, onError, onTabCount,
// onPauseChange); this module never writes to the DOM.

import { LEADER, LeaderElection, isVisible } from "./lease.js";
import { Messages } from "./messages.js";
import { SharedPause } from "./pause.js";
import { TabPresence } from "./presence.js";
import { PollScheduler } from "./scheduler.js";
import { NudgeSocket, socketAddress, socketSupported } from "./socket.js";
import { Records, randomId } from "./storage.js";

// data-* attribute (as a dataset key) -> option name and how to read its value.
const DATASET_OPTIONS = {
  tabsNamespace: ["namespace", String],
  tabsHeartbeatMs: ["heartbeatMs", Number],
  tabsTimeoutMs: ["timeoutMs", Number],
  tabsHiddenTimeoutMs: ["hiddenTimeoutMs", Number],
  pollLadderMs: ["ladderMs", parseLadder],
  pollJitter: ["jitter", Number],
  pollMaxAttempts: ["maxAttempts", Number],
  pollTimeoutMs: ["pollTimeoutMs", Number],
  socketUrl: ["socketUrl", String],
};

/** Read the coordinator's options from data-* attributes (module scripts have no currentScript). */
export function optionsFromDataset(dataset) {
  const options = {};
  for (const [attribute, [option, read]] of Object.entries(DATASET_OPTIONS)) {
    const value = dataset[attribute];
    if (value !== undefined && value !== "") options[option] = read(value);
  }
  return options;
}

/** "5000,6000,7200" -> [5000, 6000, 7200]: the server's backoff ladder, in ms. */
function parseLadder(text) {
  const ladder = text.split(",").map(Number);
  if (!ladder.every((ms) => Number.isFinite(ms) && ms > 0)) {
    throw new TypeError(`data-poll-ladder-ms is not a list of intervals: ${JSON.stringify(text)}.`);
  }
  return ladder;
}

/**
 * Coordinate this tab with the others: the leader polls with `poll({signal})`
 * (which resolves to {changed, html}) and every tab gets fresh results in `onResult`,
 * the count of open tabs in `onTabCount` and the pause in `onPauseChange` (at once
 * for the pause this tab starts with).
 */
export function startTabs({
  namespace,
  poll,
  onResult,
  onRoleChange = () => {},
  onSchedule,
  onError,
  onTabCount = () => {},
  onPauseChange = () => {},
  heartbeatMs,
  timeoutMs,
  hiddenTimeoutMs,
  socketUrl,
  ...pollOptions
}) {
  const records = new Records(namespace);
  const tabId = randomId();
  const timing = { heartbeatMs, timeoutMs, hiddenTimeoutMs };
  let pollAtOnceWhenLeading = false;
  const scheduler = new PollScheduler({
    ...pollOptions,
    poll,
    onSchedule,
    onError,
    canPoll: () => lease.holdsLease(),
    isAnyTabVisible: isVisible,
    onResult: (html) => messages.broadcast(html),
  });
  const socket = nudgeSocket(socketUrl, scheduler);
  const lease = new LeaderElection({
    records,
    tabId,
    ...timing,
    onRoleChange(role) {
      if (role === LEADER) startLeading({ atOnce: pollAtOnceWhenLeading });
      else stopLeading();
      pollAtOnceWhenLeading = false;
      onRoleChange(role);
    },
  });
  const messages = new Messages({
    records,
    isLeader: () => lease.isLeader,
    onBroadcast: onResult,
    onSignal: (kind) => followSignal(scheduler, kind),
  });
  const presence = new TabPresence({ records, tabId, ...timing, onCount: onTabCount });
  const sharedPause = new SharedPause({ records, tabId, onChange: followPause });

  // While the user's pause lasts, the lead can fall to this tab but it stays quiet.
  function startLeading({ atOnce }) {
    if (sharedPause.paused) return;
    scheduler.start({ atOnce });
    socket?.start();
  }

  function stopLeading() {
    socket?.stop();
    scheduler.stop();
  }

  /** The user's pause, from any tab: no poll and no socket, in any tab, until resume(). */
  function followPause(state) {
    if (state.paused) stopLeading();
    else if (lease.isLeader) startLeading({ atOnce: true });
    onPauseChange(state);
  }

  /** Pause updates in every tab. */
  function pause() {
    sharedPause.pause();
  }

  /** Undo pause() (this tab's or another's) in every tab; the leader polls at once. */
  function resume() {
    sharedPause.resume();
  }

  // A tab that becomes visible polls at once: through the leader, or by taking the lead.
  function wake() {
    if (lease.isLeader) scheduler.wake();
    else if (lease.elect()) pollAtOnceWhenLeading = true;
    else messages.signal("wake");
  }

  function noteAction() {
    messages.signal("action");
  }

  const onVisibilityChange = () => isVisible() && wake();
  const onFocus = () => messages.signal("focus");
  document.addEventListener("visibilitychange", onVisibilityChange);
  window.addEventListener("focus", onFocus);
  // Counted first: a pause found in storage holds only while another tab is open.
  presence.start();
  sharedPause.start({ othersOpen: presence.othersOpen });
  onPauseChange(sharedPause.state);
  // The last broadcast first: a new tab shows it at once instead of waiting for a poll.
  messages.start();
  lease.start();

  function stop() {
    document.removeEventListener("visibilitychange", onVisibilityChange);
    window.removeEventListener("focus", onFocus);
    stopLeading();
    messages.stop();
    lease.stop();
    presence.stop();
    sharedPause.stop();
  }

  /**
   * Remove every key of this namespace and of the namespaces within the user's (at
   * logout: cached fragments belong to the user). An operation's page has one of
   * its own, "user-1:operation-<id>", within the dashboard's "user-1".
   */
  function clear() {
    new Records(namespace.split(":")[0]).clear();
    messages.forget();
  }

  return {
    lease,
    messages,
    scheduler,
    socket,
    presence,
    sharedPause,
    wake,
    noteAction,
    pause,
    resume,
    stop,
    clear,
  };
}

/** The leader's socket to the change feed, steering `scheduler`; null where there is none. */
function nudgeSocket(path, scheduler) {
  if (!path || !socketSupported()) return null;
  return new NudgeSocket({
    url: socketAddress(path),
    onUp: () => scheduler.setLive(true),
    onDown: () => scheduler.setLive(false),
    onNudge: () => scheduler.nudge(),
  });
}

function followSignal(scheduler, kind) {
  if (kind === "action") scheduler.noteAction();
  else if (kind === "wake") scheduler.wake();
  else if (kind === "focus") scheduler.resumeIfPaused();
}
