// The cross-tab coordinator: ties the lease (lease.js), the messages between tabs
// (messages.js) and the poll scheduler (scheduler.js) together, so that the leader
// tab alone polls and every tab gets each result. The page learns what happens
// through the callbacks it passes (onResult, onRoleChange, onSchedule, onError);
// this module never writes to the DOM.

import { LEADER, LeaderElection, isVisible } from "./lease.js";
import { Messages } from "./messages.js";
import { PollScheduler } from "./scheduler.js";
import { Records } from "./storage.js";

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
 * (which resolves to {changed, html}) and every tab gets fresh results in `onResult`.
 */
export function startTabs({
  namespace,
  poll,
  onResult,
  onRoleChange = () => {},
  onSchedule,
  onError,
  heartbeatMs,
  timeoutMs,
  hiddenTimeoutMs,
  ...pollOptions
}) {
  const records = new Records(namespace);
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
  const lease = new LeaderElection({
    records,
    heartbeatMs,
    timeoutMs,
    hiddenTimeoutMs,
    onRoleChange(role) {
      if (role === LEADER) scheduler.start({ atOnce: pollAtOnceWhenLeading });
      else scheduler.stop();
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
  // The last broadcast first: a new tab shows it at once instead of waiting for a poll.
  messages.start();
  lease.start();

  function stop() {
    document.removeEventListener("visibilitychange", onVisibilityChange);
    window.removeEventListener("focus", onFocus);
    scheduler.stop();
    messages.stop();
    lease.stop();
  }

  /** Remove every key of this namespace (at logout: cached fragments belong to the user). */
  function clear() {
    records.clear();
    messages.forget();
  }

  return { lease, messages, scheduler, wake, noteAction, stop, clear };
}

function followSignal(scheduler, kind) {
  if (kind === "action") scheduler.noteAction();
  else if (kind === "wake") scheduler.wake();
  else if (kind === "focus") scheduler.resumeIfPaused();
}
