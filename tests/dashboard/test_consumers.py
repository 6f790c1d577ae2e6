"""The leader tab's nudge socket, through the whole ASGI application."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import Client

import operations.feed
from coordhub.asgi import application
from dashboard.consumers import (
    FOREIGN_ORIGIN,
    MAX_SOCKETS_PER_CLIENT,
    NO_SUCH_SOCKET,
    PROGRESS_NUDGE_SECONDS,
    SIGN_IN_REQUIRED,
    TOO_MANY_SOCKETS,
    open_sockets,
    same_origin,
    socket_client_key,
)
from operations.feed import EVERYTHING, Change, ChangeFeed, process_feed

# ALLOWED_HOSTS as coordhub.asgi read it on import (pytest-django adds "testserver" later).
HOST = "127.0.0.1"
PAGE = f"http://{HOST}"
CLIENT = "198.51.100.7"
# A nudge due at once still waits GATHER_SECONDS (20 ms) to gather a commit's changes.
PROMPTLY = 0.5


@pytest.fixture(autouse=True)
def feed(monkeypatch) -> Iterator[ChangeFeed]:
    """The process's feed for one test, hearing nothing but what the test publishes."""
    quiet = ChangeFeed(lambda feed: None)
    monkeypatch.setattr(operations.feed, "_feed", quiet)
    yield quiet
    assert quiet.subscribers == 0  # every socket of the test unsubscribed when it closed
    assert open_sockets.total() == 0  # and gave back its place


def socket(
    path: str = "/ws/live/",
    *,
    origin: str | None = PAGE,
    client: str = CLIENT,
    cookie: str | None = None,
) -> WebsocketCommunicator:
    """A browser's WebSocket to `path` from a page at `origin`, as the server hands it over."""
    headers = [(b"host", HOST.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    # The server's address of the peer (WebsocketCommunicator leaves it out); the
    # application reads the scope only once it runs.
    communicator.scope["client"] = (client, 50000)
    return communicator


async def opened(**options: object) -> WebsocketCommunicator:
    communicator = socket(**options)
    connected, code = await communicator.connect()
    assert connected, code
    return communicator


async def refusal(communicator: WebsocketCommunicator) -> int | None:
    """The close code a socket is refused with (then its disconnect), or None if accepted."""
    connected, code = await communicator.connect()
    await communicator.disconnect()
    return None if connected else code


async def publish(*changes: Change, apart: float = 0.0) -> None:
    """Publish `changes` on the process's feed from another thread, as its listener does."""

    def run() -> None:
        for change in changes:
            process_feed().publish([change])
            time.sleep(apart)

    await asyncio.to_thread(run)


def state() -> Change:
    return Change(uuid.uuid4(), state=True)


def progress() -> Change:
    return Change(uuid.uuid4(), state=False)


def test_a_page_of_the_same_site_opens_the_socket():
    async def scenario() -> int | None:
        return await refusal(socket())

    assert asyncio.run(scenario()) is None


def test_a_page_of_the_same_site_on_another_port_is_a_foreign_origin():
    async def scenario() -> int | None:
        return await refusal(socket(origin=f"{PAGE}:8080"))

    assert asyncio.run(scenario()) == FOREIGN_ORIGIN


def test_a_page_of_another_allowed_host_is_refused_as_a_foreign_origin():
    async def scenario() -> int | None:
        return await refusal(socket(origin="http://localhost"))

    assert asyncio.run(scenario()) == FOREIGN_ORIGIN


@pytest.mark.parametrize("origin", ["http://evil.example", None, "null"])
def test_a_page_of_another_site_or_of_none_is_refused(origin):
    async def scenario() -> int | None:
        return await refusal(socket(origin=origin))

    assert asyncio.run(scenario()) is not None


def test_an_anonymous_socket_is_refused_where_anonymous_use_is_off(configure):
    configure(allow_anonymous=False)

    async def scenario() -> int | None:
        return await refusal(socket())

    assert asyncio.run(scenario()) == SIGN_IN_REQUIRED


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_user_opens_the_socket_where_anonymous_use_is_off(configure):
    configure(allow_anonymous=False)
    browser = Client()
    browser.force_login(get_user_model().objects.create_user("ada"))
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value

    async def scenario() -> int | None:
        return await refusal(socket(cookie=f"{settings.SESSION_COOKIE_NAME}={session}"))

    assert asyncio.run(scenario()) is None


def test_an_unknown_path_is_refused_as_no_such_socket():
    async def scenario() -> list[int | None]:
        return [await refusal(socket(path)) for path in ("/ws/other/", "/ws/live", "/")]

    assert asyncio.run(scenario()) == [NO_SUCH_SOCKET] * 3


def test_a_client_past_its_sockets_is_refused_and_may_open_again_once_one_closes():
    async def scenario() -> tuple[int | None, int | None, int | None]:
        sockets = [await opened() for _ in range(MAX_SOCKETS_PER_CLIENT)]
        one_more = await refusal(socket())
        another_client = await refusal(socket(client="198.51.100.8"))
        await sockets.pop().disconnect()
        after_a_close = await refusal(socket())
        for communicator in sockets:
            await communicator.disconnect()
        return one_more, another_client, after_a_close

    one_more, another_client, after_a_close = asyncio.run(scenario())

    assert one_more == TOO_MANY_SOCKETS
    assert another_client is None
    assert after_a_close is None


def test_a_refused_socket_takes_no_place_of_its_client(configure):
    configure(allow_anonymous=False)

    async def scenario() -> int:
        for _ in range(MAX_SOCKETS_PER_CLIENT + 1):
            assert await refusal(socket()) == SIGN_IN_REQUIRED
        return open_sockets.total()

    assert asyncio.run(scenario()) == 0


def test_a_change_arrives_as_the_feeds_version_and_nothing_else():
    async def scenario() -> object:
        communicator = await opened()
        await publish(state())
        message = await communicator.receive_json_from(timeout=PROMPTLY)
        await communicator.disconnect()
        return message

    assert asyncio.run(scenario()) == {"version": 1}


def test_every_open_socket_is_nudged():
    async def scenario() -> list[object]:
        sockets = [await opened(), await opened(client="198.51.100.8")]
        await publish(EVERYTHING)
        messages = [await each.receive_json_from(timeout=PROMPTLY) for each in sockets]
        for each in sockets:
            await each.disconnect()
        return messages

    assert asyncio.run(scenario()) == [{"version": 1}, {"version": 1}]


def test_changes_of_state_a_few_milliseconds_apart_arrive_as_one_nudge():
    async def scenario() -> tuple[object, bool]:
        communicator = await opened()
        await publish(state(), Change(), state(), apart=0.002)  # one commit: two operations, a slot
        message = await communicator.receive_json_from(timeout=PROMPTLY)
        nothing_more = await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        return message, nothing_more

    assert asyncio.run(scenario()) == ({"version": 3}, True)


def test_progress_nudges_at_most_once_per_progress_interval():
    async def scenario() -> tuple[object, bool, object, float, bool]:
        communicator = await opened()
        await publish(progress())
        first = await communicator.receive_json_from(timeout=PROMPTLY)
        first_at = time.monotonic()
        await publish(progress(), progress(), progress(), apart=0.05)
        held_back = await communicator.receive_nothing(timeout=PROGRESS_NUDGE_SECONDS / 2)
        second = await communicator.receive_json_from(timeout=PROGRESS_NUDGE_SECONDS)
        gap = time.monotonic() - first_at
        nothing_more = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return first, held_back, second, gap, nothing_more

    first, held_back, second, gap, nothing_more = asyncio.run(scenario())

    assert first == {"version": 1}  # the first progress goes out at once
    assert held_back
    assert second == {"version": 4}  # the three later ones as one, carrying the latest version
    assert gap >= PROGRESS_NUDGE_SECONDS - 0.05
    assert nothing_more


def test_a_change_of_state_is_not_held_back_behind_a_progress_wait():
    async def scenario() -> tuple[object, float]:
        communicator = await opened()
        await publish(progress())
        await communicator.receive_json_from(timeout=PROMPTLY)
        await publish(progress())  # due only a progress interval after the first
        start = time.monotonic()
        await publish(state())
        message = await communicator.receive_json_from(timeout=PROGRESS_NUDGE_SECONDS)
        took = time.monotonic() - start
        await communicator.disconnect()
        return message, took

    message, took = asyncio.run(scenario())

    assert message == {"version": 3}
    assert took < PROGRESS_NUDGE_SECONDS / 2


def test_a_closed_socket_leaves_the_feed_and_gives_back_its_place():
    async def scenario() -> tuple[int, int, int, int]:
        communicator = await opened()
        while_open = process_feed().subscribers, open_sockets.total()
        await publish(progress())  # a nudge still pending as it closes
        await communicator.disconnect()
        await publish(state())  # after the close: heard by nobody
        await asyncio.sleep(0.1)
        return (*while_open, process_feed().subscribers, open_sockets.total())

    assert asyncio.run(scenario()) == (1, 1, 0, 0)


def test_what_the_tab_sends_is_ignored_and_the_socket_stays_open():
    async def scenario() -> tuple[bool, object]:
        communicator = await opened()
        await communicator.send_to(text_data="hello")
        await communicator.send_to(bytes_data=b"\x00\x01")
        await communicator.send_json_to({"version": 99})
        silent = await communicator.receive_nothing(timeout=0.2)
        await publish(state())
        message = await communicator.receive_json_from(timeout=PROMPTLY)
        await communicator.disconnect()
        return silent, message

    assert asyncio.run(scenario()) == (True, {"version": 1})


def scope(origin: str, host: str = "coordhub.example", scheme: str = "ws") -> dict:
    return {"scheme": scheme, "headers": [(b"host", host.encode()), (b"origin", origin.encode())]}


@pytest.mark.parametrize(
    ("origin", "scheme"),
    [
        ("https://coordhub.example", "wss"),
        ("http://coordhub.example", "ws"),
        ("https://trusted.example", "ws"),
        ("https://trusted.example", "wss"),
    ],
)
def test_same_origin_accepts_the_sites_own_pages_and_trusted_origins(origin, scheme, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://trusted.example"]

    assert same_origin(scope(origin, scheme=scheme))


@pytest.mark.parametrize(
    ("origin", "scheme"),
    [("http://coordhub.example", "wss"), ("https://coordhub.example", "ws")],
)
def test_same_origin_refuses_the_sites_host_under_the_other_scheme(origin, scheme):
    assert not same_origin(scope(origin, scheme=scheme))


def test_behind_a_trusted_tls_proxy_the_sites_pages_are_https(configure):
    configure(trusted_proxies="10.0.0.0/8")
    proxied = scope("https://coordhub.example") | {"client": ("10.0.0.2", 5000)}
    proxied["headers"].append((b"x-forwarded-proto", b"https"))
    forged = scope("https://coordhub.example") | {"client": ("203.0.113.9", 5000)}
    forged["headers"].append((b"x-forwarded-proto", b"https"))

    assert same_origin(proxied)
    assert not same_origin(forged)


@pytest.mark.parametrize(
    "origin",
    [
        "https://other.example",
        "https://coordhub.example:8443",
        "ws://coordhub.example",
        "null",
        "",
        "http://trusted.example",  # trusted as https only
    ],
)
def test_same_origin_refuses_other_pages(origin, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://trusted.example"]

    assert not same_origin(scope(origin))


def test_same_origin_accepts_a_page_under_a_trusted_wildcard_origin(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.trusted.example"]

    assert same_origin(scope("https://dashboard.trusted.example"))


def test_an_anonymous_socket_is_keyed_by_its_address():
    anonymous = {"user": AnonymousUser(), "headers": [], "client": ("203.0.113.9", 4000)}

    assert socket_client_key(anonymous) == "ip:203.0.113.9"


def test_behind_a_trusted_proxy_an_anonymous_socket_is_keyed_by_the_forwarded_address(configure):
    configure(trusted_proxies="10.0.0.0/8")
    forwarded = {
        "user": AnonymousUser(),
        "headers": [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.2")],
        "client": ("10.0.0.1", 4000),
    }

    assert socket_client_key(forwarded) == "ip:203.0.113.9"


@pytest.mark.django_db
def test_a_signed_in_socket_is_keyed_by_its_user():
    user = get_user_model().objects.create_user("grace")

    assert socket_client_key({"user": user, "headers": [], "client": ("203.0.113.9", 4000)}) == (
        f"user:{user.pk}"
    )
