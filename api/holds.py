"""Held answers: a view says "answer when this operation changes", and the ASGI layer waits.

A waiting API call must hold no thread and no database connection while it
waits, but Django's views are synchronous and its middleware runs in a thread.
So a view that would wait answers at once with what it would say at the end of
the wait (a 304, a 202) and a `Hold` in an internal response header. The ASGI
layer (`coordhub.holding`) strips the header, waits on the process's change feed
with neither thread nor connection, and on a change asks Django again: a GET of
`recheck_path` marked as a recheck in the ASGI scope (a client cannot send one),
which answers for good or holds again until the same deadline. The views keep
every rule (who may see what, ETags) in one place; the holding layer knows none.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Literal

from django.http import HttpRequest, HttpResponse
from django.utils.http import parse_etags

from coordhub.config import MAX_WAIT_SECONDS
from operations.exceptions import InvalidRequest

HOLD_HEADER = "X-Coordhub-Hold"
# Set in the ASGI scope by the holding layer, never from a request: a client cannot forge them.
CAN_HOLD = "coordhub.can_hold"
RECHECK = "coordhub.recheck"
# Held requests of one client, and of all, in one web process; past either a wait is
# refused (429). Each held request keeps a socket open: the total stays well below the
# usual limit of 1024 open files.
MAX_HELD_PER_CLIENT = 20
MAX_HELD_PER_PROCESS = 500

Mode = Literal["changed", "finished", "templates"]


@dataclass(frozen=True)
class Hold:
    operation_id: str
    until: float  # time.monotonic() of this process
    seen_version: int  # the change feed's version before the view read the operation
    recheck_path: str
    mode: Mode  # what the recheck answers: any change, the end, the templates' end
    client_key: str
    # What the client was shown when held: a recheck answers once the operation differs.
    etag: str = ""

    def header(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_header(cls, value: str) -> Hold:
        return cls(**json.loads(value))


def can_hold(request: HttpRequest) -> bool:
    """Whether this request came through the holding layer (ASGI) and may be held."""
    return bool(getattr(request, "scope", {}).get(CAN_HOLD))


def recheck_of(request: HttpRequest) -> dict | None:
    """The recheck this request is ({"mode", "until", "etag"}), or None for a client's own."""
    return getattr(request, "scope", {}).get(RECHECK)


def hold(
    response: HttpResponse,
    request: HttpRequest,
    *,
    operation_id: uuid.UUID,
    seconds: float,
    seen_version: int,
    recheck_path: str,
    mode: Mode,
    client_key: str,
    etag: str = "",
) -> HttpResponse:
    """Mark `response` as the answer to give after `seconds` if nothing changes before."""
    recheck = recheck_of(request)
    until = recheck["until"] if recheck else time.monotonic() + seconds
    held = Hold(str(operation_id), until, seen_version, recheck_path, mode, client_key, etag)
    response[HOLD_HEADER] = held.header()
    return response


def wait_seconds(text: str | None, *, name: str) -> int:
    """Read a wait of 0 to MAX_WAIT_SECONDS whole seconds; None or "" is 0."""
    if text is None or text == "":
        return 0
    if not is_whole_number(text) or len(text) > 3 or int(text) > MAX_WAIT_SECONDS:
        raise InvalidRequest(
            f"{name} must be a whole number of seconds from 0 to {MAX_WAIT_SECONDS}, not {text!r}."
        )
    return int(text)


def preferred_wait(request: HttpRequest) -> int:
    """The `wait` of an RFC 7240 `Prefer` header, capped at MAX_WAIT_SECONDS; 0 if none.

    A preference is a hint: one the server cannot read is ignored, not refused.
    """
    for preference in request.headers.get("Prefer", "").split(","):
        name, _, value = preference.split(";")[0].partition("=")
        value = value.strip().strip('"')
        if name.strip().lower() == "wait" and is_whole_number(value):
            # Very long numbers are long waits: capped before int() is asked to read them.
            value = value.lstrip("0") or "0"
            return MAX_WAIT_SECONDS if len(value) > 3 else min(int(value), MAX_WAIT_SECONDS)
    return 0


def is_whole_number(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also takes "٣" and "²", which int() then refuses."""
    return text.isascii() and text.isdigit()


class PerClientBound:
    """How many of something (held requests, sockets) each client, and all, have open here."""

    def __init__(self, limit: int, total_limit: int, what: str = "waiting requests") -> None:
        self.limit, self.total_limit, self.what = limit, total_limit, what
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def reserve(self, client_key: str) -> bool:
        with self._lock:
            if self._held[client_key] >= self.limit or self._held.total() >= self.total_limit:
                return False
            self._held[client_key] += 1
            return True

    def refusal(self, client_key: str) -> str:
        """Why `reserve` refused `client_key`, as a sentence."""
        with self._lock:
            if self._held[client_key] >= self.limit:
                return (
                    f"This client already has {self.limit} {self.what} open here; wait for "
                    "one to end before opening another."
                )
            return (
                f"This server already holds {self.total_limit} {self.what}, its most; "
                "try again shortly."
            )

    def release(self, client_key: str) -> None:
        with self._lock:
            self._held[client_key] -= 1
            if self._held[client_key] <= 0:
                del self._held[client_key]

    def total(self) -> int:
        with self._lock:
            return self._held.total()


def etag_matches(etag: str, if_none_match: str) -> bool:
    """Whether `If-None-Match` names `etag`, by RFC 9110's weak comparison (`*` names any)."""
    tags = parse_etags(if_none_match)
    if tags == ["*"]:
        return True
    return etag.removeprefix("W/") in {tag.removeprefix("W/") for tag in tags}
