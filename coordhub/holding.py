"""Hold API calls that wait for a change, with no thread and no database connection.

The ASGI side of `api.holds`: Django answers as usual; an answer that carries a
hold is kept back, and this layer waits on the process's change feed until the
operation changes or the hold's deadline passes. On a change it asks Django again
(a recheck, marked in the scope), which answers for good or holds again; at the
deadline the first answer goes out. A client that hangs up ends its wait.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

from api.holds import (
    CAN_HOLD,
    HOLD_HEADER,
    MAX_HELD_PER_CLIENT,
    MAX_HELD_PER_PROCESS,
    RECHECK,
    Hold,
    PerClientBound,
)
from operations.feed import process_feed, wait_for_change

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Application = Callable[[Message, Receive, Send], Awaitable[None]]

HOLD_HEADER_BYTES = HOLD_HEADER.lower().encode()
# A change that wakes hundreds of held requests rechecks them a few at a time: each
# recheck is a request in a thread with a database connection from a pool of 20.
RECHECKS_AT_ONCE = 8
# A held start's own headers, which the final answer (from a recheck) keeps: where the
# operation is, and the start budget it spent.
KEPT_HEADERS = (b"location", b"ratelimit-policy", b"ratelimit")
# Request headers that describe the original body, which a recheck (a GET) does not carry.
BODY_HEADERS = {b"content-length", b"content-type", b"transfer-encoding"}

held_requests = PerClientBound(MAX_HELD_PER_CLIENT, MAX_HELD_PER_PROCESS)


class Answer:
    """A response Django sent, kept back: its start message, hold and body."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.hold: Hold | None = None
        self.body: list[Message] = []

    def keeping(self, first: Answer, names: tuple[bytes, ...]) -> Answer:
        """This answer with the headers `names` of `first` that it does not have itself."""
        have = {name.lower() for name, _ in self.start["headers"]}
        kept = [(n, v) for n, v in first.start["headers"] if n.lower() in names and n not in have]
        self.start = {**self.start, "headers": [*self.start["headers"], *kept]}
        return self

    async def take(self, message: Message, passing: Send | None = None) -> None:
        """Keep `message` back if this answer is held (always, without `passing`), else pass it."""
        if message["type"] == "http.response.start":
            self.start, self.hold = without_hold(message)
        if passing is not None and self.hold is None:
            await passing(message)
        elif message["type"] == "http.response.body":
            self.body.append(message)

    async def send_to(self, send: Send) -> None:
        await send(self.start)
        for message in self.body:
            await send(message)


class HoldingApplication:
    """Wrap Django's ASGI application: hold answers that say so, pass every other through."""

    def __init__(self, django: Application) -> None:
        self.django = django
        self._rechecking: dict[int, asyncio.Semaphore] = {}

    def rechecks_at_once(self) -> asyncio.Semaphore:
        """This event loop's bound on rechecks in flight (daphne runs one loop)."""
        loop = id(asyncio.get_running_loop())
        return self._rechecking.get(loop) or self._rechecking.setdefault(
            loop, asyncio.Semaphore(RECHECKS_AT_ONCE)
        )

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        scope = {**scope, CAN_HOLD: True}
        answer = Answer()
        await self.django(scope, receive, partial(answer.take, passing=send))
        if answer.hold is not None:
            await self.answer_held(scope, receive, send, answer)

    async def answer_held(
        self, scope: Message, receive: Receive, send: Send, first: Answer
    ) -> None:
        hold = first.hold
        if not held_requests.reserve(hold.client_key):
            await too_many_waiting(send, first, hold, held_requests.refusal(hold.client_key))
            return
        try:
            final = await until_hung_up(receive, self.wait(scope, first))
        finally:
            held_requests.release(hold.client_key)
        if final is not None:
            await final.send_to(send)

    async def wait(self, scope: Message, first: Answer) -> Answer:
        """Wait for changes until one gives a final answer; the first answer at the deadline."""
        hold = first.hold
        while True:
            left = hold.until - time.monotonic()
            changed = await wait_for_change(
                process_feed(),
                uuid.UUID(hold.operation_id),
                left,
                seen_version=hold.seen_version,
                progress=hold.mode == "changed",  # an end is a change of state
            )
            if not changed:
                return first
            async with self.rechecks_at_once():
                answer = await self.recheck(scope, hold)
            if answer.hold is None:
                return answer.keeping(first, KEPT_HEADERS if hold.mode != "changed" else ())
            hold = answer.hold

    async def recheck(self, scope: Message, hold: Hold) -> Answer:
        """Ask Django again, as a GET of the hold's recheck path, and keep what it answers."""
        path = hold.recheck_path
        headers = [(name, value) for name, value in scope["headers"] if name not in BODY_HEADERS]
        recheck = {
            **scope,
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            RECHECK: {"mode": hold.mode, "until": hold.until, "etag": hold.etag},
        }
        answer = Answer()
        await self.django(recheck, empty_body(), answer.take)
        return answer


def without_hold(start: Message) -> tuple[Message, Hold | None]:
    """Split the internal hold header off a response's start message."""
    hold, headers = None, []
    for name, value in start.get("headers", []):
        if name.lower() == HOLD_HEADER_BYTES:
            hold = Hold.from_header(value.decode())
        else:
            headers.append((name, value))
    return {**start, "headers": headers}, hold


async def too_many_waiting(send: Send, first: Answer, hold: Hold, detail: str) -> None:
    """Past a bound: a start that already happened answers as if it did not wait."""
    if hold.mode != "changed":
        headers = [(n, v) for n, v in first.start["headers"] if n.lower() != b"preference-applied"]
        first.start = {**first.start, "headers": headers}
        await first.send_to(send)
        return
    body = json.dumps({"error": "too_many_waiting", "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def until_hung_up(receive: Receive, waiting: Awaitable[Answer]) -> Answer | None:
    """Run `waiting`; None if the client disconnects first (then nothing is sent)."""
    wait = asyncio.ensure_future(waiting)
    hang_up = asyncio.ensure_future(disconnected(receive))
    try:
        done, _ = await asyncio.wait({wait, hang_up}, return_when=asyncio.FIRST_COMPLETED)
        return wait.result() if wait in done else None
    finally:
        for task in (wait, hang_up):
            task.cancel()


async def disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def empty_body() -> Receive:
    """A recheck's `receive`: an empty body, then nothing until cancelled (no hang-up)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Future()  # Django listens for a hang-up until it has answered
        sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive
