"""Rate limits on a real Redis: one round trip a count, pooled connections, outages."""

from __future__ import annotations

import contextvars
import json
import re
import signal
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from django.core.cache import caches
from django.test import RequestFactory, override_settings

from api import limits
from coordhub.testing.services import RedisServer
from operations.exceptions import RateLimitUnavailable
from tests.live import LiveServer

BURST = 200
THREADS = 8
# daphne's request threads and the worker each keep a few pooled connections.
MOST_NEW_CONNECTIONS = 20


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def coordhub(tmp_path_factory, redis_server):
    """One coordhub for the module: starting it (migrate, daphne, worker) takes seconds."""
    server = LiveServer(
        tmp_path_factory.mktemp("coordhub"),
        COORDHUB_ENV="testing",
        REDIS_URL=redis_server.url,
        READ_REQUESTS_PER_MINUTE="100000",
    ).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def redis_running(redis_server):
    """Give each test a running Redis, whatever the test before it did."""
    if not redis_server.answers():
        redis_server.start()


def connections_received(server: RedisServer) -> int:
    with redis.Redis(port=server.port, socket_timeout=2) as client:
        return int(client.info("stats")["total_connections_received"])


def start(coordhub: LiveServer) -> httpx.Response:
    return httpx.post(
        f"{coordhub.url}/api/operations",
        json={"kind": "simulated", "params": {"duration": 1}},
        timeout=10,
    )


def test_a_burst_of_reads_reuses_pooled_redis_connections(coordhub, redis_server):
    before = connections_received(redis_server)

    with httpx.Client(base_url=coordhub.url, timeout=10) as http:

        def read(_: int) -> int:
            return http.get("/api/operations").status_code

        with ThreadPoolExecutor(THREADS) as pool:
            statuses = list(pool.map(read, range(BURST)))

    opened = connections_received(redis_server) - before - 1  # less our own INFO connection
    assert statuses == [200] * BURST
    assert opened <= MOST_NEW_CONNECTIONS


def test_starts_fail_closed_while_redis_is_down_and_recover_when_it_returns(coordhub, redis_server):
    started = start(coordhub)
    assert started.status_code == 202

    redis_server.stop()
    refused = start(coordhub)
    listing = httpx.get(f"{coordhub.url}/api/operations", timeout=10)
    health = httpx.get(f"{coordhub.url}/api/health", timeout=10)

    assert refused.status_code == 503
    assert refused.json()["error"] == "rate_limit_unavailable"
    assert int(refused.headers["Retry-After"]) >= 1
    assert listing.status_code == 200
    assert started.json()["id"] in [operation["id"] for operation in listing.json()["operations"]]
    assert health.status_code == 503
    assert health.json()["failed"] == ["cache"]

    redis_server.start()
    recovered = start(coordhub)

    assert recovered.status_code == 202
    assert httpx.get(f"{coordhub.url}/api/health", timeout=10).status_code == 200


@pytest.fixture
def on_redis(redis_url, configure):
    configure(enable_rate_limiting=True, requests_per_minute=3, allow_anonymous=True)
    with override_settings(CACHES=redis_cache_settings(redis_url)):
        caches["default"].clear()
        yield caches["default"]


def redis_cache_settings(url: str) -> dict:
    return {"default": {"BACKEND": "coordhub.cache.RedisCache", "LOCATION": url}}


def anonymous_request():
    return RequestFactory().post("/api/operations", REMOTE_ADDR="192.0.2.10")


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The name of each command sent to Redis from now on, by any client of this process."""
    names: list[str] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def recorded(connection, command, *args, **kwargs):
        packed = b"".join(command) if isinstance(command, list) else command
        names.append(re.match(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)", packed)[1].decode().upper())
        return send(connection, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", recorded)
    return names


@pytest.mark.django_db
def test_a_start_is_counted_in_one_round_trip_to_redis(on_redis, sent):
    limits.spend(anonymous_request(), limits.START)  # the first may load the script
    sent.clear()

    usage = limits.spend(anonymous_request(), limits.START)

    assert sent == ["EVALSHA"]
    assert (usage.count, usage.remaining) == (2, 1)


@pytest.mark.django_db
def test_a_whole_start_asks_redis_once_for_its_attempt_and_its_budget(on_redis, sent, client):
    def start():
        body = json.dumps({"kind": "simulated", "params": {}})
        return client.post("/api/operations", body, content_type="application/json")

    start()  # the first may load the script
    sent.clear()

    response = start()

    assert response.status_code == 202
    assert response["RateLimit"].startswith('"start";r=1;')
    assert sent == ["EVALSHA"]


@pytest.mark.django_db
def test_a_redis_that_forgot_the_script_is_sent_it_whole_once(on_redis, sent):
    limits.spend(anonymous_request(), limits.START)
    on_redis.client.get_client(write=True).script_flush()
    sent.clear()

    counts = [limits.spend(anonymous_request(), limits.START).count for _ in range(2)]

    assert counts == [2, 3]
    assert sent == ["EVALSHA", "EVAL", "EVALSHA"]


@pytest.mark.django_db
def test_connections_the_server_closed_while_idle_count_the_next_start_once(on_redis, sent):
    limits.spend(anonymous_request(), limits.START)
    raw = on_redis.client.get_client(write=True)
    raw.client_kill_filter(_type="normal", skipme=True)  # what a Redis restart does to them
    sent.clear()

    usage = limits.spend(anonymous_request(), limits.START)

    assert usage.count == 2
    # The closed connection's try, then a new connection's (after its handshake).
    assert [name for name in sent if name.startswith("EVAL")] == ["EVALSHA", "EVALSHA"]


@pytest.mark.django_db
def test_a_redis_counter_expires_with_its_window_and_refunds_never_go_below_zero(on_redis):
    usage = limits.spend(anonymous_request(), limits.START)
    raw = on_redis.client.get_client(write=True)
    key = on_redis.make_key(usage.key)

    assert 0 < raw.ttl(key) <= limits.EXPIRY_SECONDS
    assert limits.refund(usage).count == 0
    raw.delete(key)  # the window expired meanwhile
    assert limits.refund(usage).count == 0
    assert raw.exists(key) == 0
    assert limits.peek(anonymous_request(), limits.START).count == 0


@pytest.mark.django_db
def test_a_refund_whose_connection_was_closed_is_not_sent_again(on_redis, sent):
    spent = limits.spend(anonymous_request(), limits.START)
    on_redis.client.get_client(write=True).client_kill_filter(_type="normal", skipme=True)
    sent.clear()

    kept = limits.refund(spent)  # failed, logged: the start stays spent rather than twice given

    assert kept.count == 1
    assert [name for name in sent if name.startswith("EVAL")] == ["EVALSHA"]
    assert limits.peek(anonymous_request(), limits.START).count == 1


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_counting_makes_no_cache_object_per_request(backend, redis_url, configure, monkeypatch):
    """Under ASGI each request is a context of its own, where Django makes a new cache object."""
    configure(enable_rate_limiting=True, requests_per_minute=100, allow_anonymous=True)
    settings = {
        "locmem": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        "redis": redis_cache_settings(redis_url),
    }[backend]
    with override_settings(CACHES=settings):
        limits.spend(anonymous_request(), limits.START)
        made = []
        backend_class = type(caches["default"])
        make = backend_class.__init__

        def recorded(cache, *args, **kwargs):
            made.append(cache)
            make(cache, *args, **kwargs)

        monkeypatch.setattr(backend_class, "__init__", recorded)
        counts = [
            contextvars.Context().run(limits.spend, anonymous_request(), limits.START).count
            for _ in range(3)
        ]

    assert counts == [2, 3, 4]
    assert made == []


@pytest.fixture
def on_paused_redis(redis_server, configure):
    """Counters on the module's Redis, read with a 0.5 s timeout; `pause` freezes the server."""
    configure(enable_rate_limiting=True, requests_per_minute=10, allow_anonymous=True)
    settings = redis_cache_settings(redis_server.url)
    settings["default"]["OPTIONS"] = {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 0.5}
    with override_settings(CACHES=settings):
        caches["default"].clear()
        yield lambda: redis_server.process.send_signal(signal.SIGSTOP)
    redis_server.process.send_signal(signal.SIGCONT)


@pytest.mark.django_db
def test_a_redis_that_stops_answering_fails_a_count_after_one_socket_timeout(
    on_paused_redis, redis_server
):
    limits.spend(anonymous_request(), limits.START)  # leaves an idle connection to reuse
    pause = on_paused_redis

    pause()
    began = time.monotonic()
    with pytest.raises(RateLimitUnavailable):
        limits.spend(anonymous_request(), limits.START)
    waited = time.monotonic() - began
    redis_server.process.send_signal(signal.SIGCONT)
    usage = limits.spend(anonymous_request(), limits.START)

    assert 0.45 <= waited < 0.95  # one timeout, never a second try on a new connection
    # Redis made the count that timed out once it woke; the timed-out connection was
    # dropped, so its late reply is never read as the answer to a later count.
    assert usage.count == 3


@pytest.mark.django_db
def test_the_counters_sockets_wait_in_the_kernel_not_in_a_poll_before_each_call(on_redis):
    limits.spend(anonymous_request(), limits.START)

    connection = limits.counter().connections.idle[0]
    seconds = connection.socket_timeout  # the cache's SOCKET_TIMEOUT, else redis-py's default
    sock = connection._sock
    receive = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("@ll"))
    send = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.calcsize("@ll"))

    assert sock.gettimeout() is None  # blocking: no poll before each send and receive
    assert seconds
    assert struct.unpack("@ll", receive) == struct.unpack("@ll", send) == (seconds, 0)
