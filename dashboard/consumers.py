"""The leader tab's nudge channel: a WebSocket that says "something changed", never what.

Only the leader tab opens one. Each change in the process's feed sends the
feed's version; the tab then fetches the live fragment as it would on a poll,
so what it may see is decided by the views alone. Changes of state go out at
once, progress at most about once a second. A socket costs the database nothing
after its handshake: the feed listens once per process, whatever the number of
sockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import ClassVar
from urllib.parse import urlsplit

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils.http import is_same_domain

from api.clients import is_trusted_proxy, peer_key
from api.holds import PerClientBound
from operations.feed import Change, ChangeFeed, process_feed

# Close codes in the 4000-4999 range ASGI leaves to applications (before the
# handshake completes the browser sees 1006; the code is for logs and tests).
SIGN_IN_REQUIRED = 4401
FOREIGN_ORIGIN = 4403
NO_SUCH_SOCKET = 4404
TOO_MANY_SOCKETS = 4429
# Open sockets of one client in one web process: a leader tab per browser needs one.
MAX_SOCKETS_PER_CLIENT = 8
# All sockets of one web process (each an open file, and a nudge on every change).
MAX_SOCKETS_PER_PROCESS = 500
PROGRESS_NUDGE_SECONDS = 1.0
# A commit reaches the feed as several changes (the operation, its slot): one nudge for all.
GATHER_SECONDS = 0.02

open_sockets = PerClientBound(MAX_SOCKETS_PER_CLIENT, MAX_SOCKETS_PER_PROCESS, "sockets")


class LiveConsumer(AsyncWebsocketConsumer):
    """Nudge one leader tab on every change its dashboard may show."""

    client_key: str | None = None

    async def connect(self) -> None:
        refusal = refusal_of(self.scope)
        if refusal is None:
            key = socket_client_key(self.scope)
            if open_sockets.reserve(key):
                self.client_key = key
            else:
                refusal = TOO_MANY_SOCKETS
        if refusal is not None:
            await self.close(code=refusal)
            return
        await self.accept()
        self.loop = asyncio.get_running_loop()
        self.last_nudge, self.pending, self.sending = 0.0, None, set()
        self.feed = process_feed()
        LoopSockets.of(self.loop, self.feed).add(self)

    def nudge(self, change: Change) -> None:
        """Nudge soon: a commit's changes as one nudge, progress at most once a second."""
        delay = GATHER_SECONDS
        if not (change.state or change.everything):
            delay = max(delay, self.last_nudge + PROGRESS_NUDGE_SECONDS - time.monotonic())
        due = self.loop.time() + delay
        if self.pending is not None:
            if self.pending.when() <= due:
                return
            self.pending.cancel()
        self.pending = self.loop.call_at(due, self.send_nudge)

    def send_nudge(self) -> None:
        self.pending = None
        self.last_nudge = time.monotonic()
        message = json.dumps({"version": self.feed.version})
        # Sends run as tasks, kept until done: the feed's callbacks cannot await.
        task = asyncio.ensure_future(self.send(text_data=message))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The tab has nothing to say: whatever it sends is ignored."""

    async def disconnect(self, code: int) -> None:
        if self.client_key is None:
            return
        LoopSockets.of(self.loop, self.feed).discard(self)
        if self.pending is not None:
            self.pending.cancel()
        open_sockets.release(self.client_key)
        self.client_key = None


class LoopSockets:
    """The open sockets of one event loop, nudged through one subscription to the feed.

    The feed calls its subscribers from its own thread; one hop into the loop per
    change, rather than one per socket, keeps a change cheap with hundreds open.
    """

    _by_loop: ClassVar[dict[tuple[int, int], LoopSockets]] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop, feed: ChangeFeed) -> None:
        self.loop, self.feed = loop, feed
        self.sockets: set[LiveConsumer] = set()

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, feed: ChangeFeed) -> LoopSockets:
        key = (id(loop), id(feed))
        return cls._by_loop.get(key) or cls._by_loop.setdefault(key, cls(loop, feed))

    def add(self, socket: LiveConsumer) -> None:
        if not self.sockets:
            self.feed.subscribe(self.on_change)
        self.sockets.add(socket)

    def discard(self, socket: LiveConsumer) -> None:
        self.sockets.discard(socket)
        if not self.sockets:
            self.feed.unsubscribe(self.on_change)
            self._by_loop.pop((id(self.loop), id(self.feed)), None)

    def on_change(self, change: Change) -> None:
        """Called from the feed's thread: hand the change to the loop, once."""
        self.loop.call_soon_threadsafe(self.nudge_all, change)

    def nudge_all(self, change: Change) -> None:
        for socket in list(self.sockets):
            socket.nudge(change)


class NoSuchSocket(AsyncWebsocketConsumer):
    """Every other WebSocket path: refused before the handshake completes."""

    async def connect(self) -> None:
        await self.close(code=NO_SUCH_SOCKET)


def refusal_of(scope: dict) -> int | None:
    """Why this socket may not open, as a close code; None if it may."""
    if not same_origin(scope):
        return FOREIGN_ORIGIN
    if not settings.COORDHUB.allow_anonymous and not scope["user"].is_authenticated:
        return SIGN_IN_REQUIRED
    return None


def header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return ""


def same_origin(scope: dict) -> bool:
    """Whether the page that opens the socket is this site (or a trusted origin), as CSRF checks.

    Allowed hosts alone would let any page connect where ALLOWED_HOSTS is "*". The
    scheme counts: on an HTTPS site, a page served over plain HTTP is not this site.
    """
    origin = header(scope, b"origin")
    if origin == f"{page_scheme(scope)}://{header(scope, b'host')}":
        return True
    return urlsplit(origin).scheme in ("http", "https") and trusted_origin(origin)


def page_scheme(scope: dict) -> str:
    """The scheme of the site's pages: https for wss, or behind a trusted TLS proxy."""
    if scope.get("scheme") == "wss":
        return "https"
    peer = (scope.get("client") or ("", 0))[0]
    proxied = is_trusted_proxy(peer)
    return "https" if proxied and header(scope, b"x-forwarded-proto") == "https" else "http"


def trusted_origin(origin: str) -> bool:
    """Whether CSRF_TRUSTED_ORIGINS names `origin`, as Django's CSRF check reads it.

    An entry may be exact (`https://app.example.com`) or cover subdomains
    (`https://*.example.com`).
    """
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parts = urlsplit(origin)
    return any(
        trusted.scheme == parts.scheme and is_same_domain(parts.netloc, trusted.netloc.lstrip("*"))
        for trusted in map(urlsplit, settings.CSRF_TRUSTED_ORIGINS)
        if "*" in trusted.netloc
    )


def socket_client_key(scope: dict) -> str:
    """Key the socket's client as `api.clients.client_key` keys its requests."""
    user = scope["user"]
    if user.is_authenticated:
        return f"user:{user.pk}"
    peer = (scope.get("client") or ("", 0))[0]
    return peer_key(peer, header(scope, b"x-forwarded-for"))
