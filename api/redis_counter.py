"""Rate-limit counters on Redis: one round trip per request, on connections kept for them.

redis-py's command path takes a connection from its pool, polls the socket for a
stale reply, records pool metrics and wraps the call in retries. For the one
short script a request runs, that cost as much as the round trip itself (row 4
of `make bench`). So the counter keeps idle connections of its own, made by the
cache pool's connection class with the pool's arguments (same server, password,
TLS and timeouts), and sends each call packed through redis-py's `Connection`.

A connection goes back to the idle list only once its reply has been read whole,
so none is ever reused mid-reply and the poll is not needed; on any other error
it is dropped. An idle connection the server closed meanwhile (Redis restarted)
fails on its next use before the command runs: a count is then sent once more
on a new connection. Were a reply lost after the count was made, the retry
counts the request twice: a limiter may refuse early, never admit more. A
refund is never sent twice, since one made twice would admit more.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from coordhub.cache import RedisCache

# Count each key, and give a new counter its expiry (a refund that emptied a
# counter must not leave it without one).
COUNT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCRBY', key, ARGV[1])
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[2]) end
end
return counts
"""
# Give one back, but never below zero nor to a counter whose window has expired.
REFUND_SCRIPT = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


class Connections:
    """Idle connections to one Redis server, each call a packed command and its reply."""

    def __init__(self, connection_class: type, arguments: dict[str, Any]) -> None:
        self.connection_class = connection_class
        self.arguments = arguments
        self.idle: list[Any] = []  # list.pop and list.append are atomic: no lock needed
        self.pid = os.getpid()

    def call(self, *command: Any, retry: bool = True) -> Any:
        """Send `command` and return its reply; once more on a new connection if `retry`."""
        if self.pid != os.getpid():  # a forked child must not share its parent's sockets
            self.idle, self.pid = [], os.getpid()
        try:
            connection = self.idle.pop()
        except IndexError:
            return self.send(self.connect(), command)
        try:
            return self.send(connection, command)
        except RedisConnectionError:
            if not retry:
                raise
            return self.send(self.connect(), command)

    def connect(self) -> Any:
        """A new connection, its handshake made; a plain socket's timeout left to the kernel.

        In Python's timeout mode a socket polls before every send and every receive, two
        more system calls a count, each letting another thread take the GIL: 5 % of a
        daphne process's throughput. The kernel's own send and receive timeouts keep the
        same bound without them.
        """
        connection = self.connection_class(**self.arguments)
        connection.connect()
        sock = connection._sock  # redis-py's socket: it has no public accessor
        timeout = sock.gettimeout()
        if type(sock) is socket.socket and timeout:  # TLS sockets keep Python's timeout mode
            seconds, fraction = divmod(timeout, 1)
            interval = struct.pack("@ll", int(seconds), int(fraction * 1_000_000))
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, interval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, interval)
        return connection

    def send(self, connection: Any, command: tuple[Any, ...]) -> Any:
        try:
            connection.send_packed_command(connection.pack_command(*command), check_health=False)
            reply = connection.read_response()
        except ResponseError:
            self.idle.append(connection)  # an error reply, read whole: the connection is sound
            raise
        except RedisConnectionError as exc:
            connection.disconnect()
            if isinstance(exc.__context__, BlockingIOError):  # a kernel timeout ran out
                raise RedisTimeoutError("Timeout talking to Redis") from exc
            raise
        except BaseException:
            connection.disconnect()
            raise
        self.idle.append(connection)
        return reply


class Script:
    """A Lua script run by its digest, sent whole only when the server does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def run(
        self, connections: Connections, keys: list[str], *arguments: Any, retry: bool = True
    ) -> Any:
        try:
            return connections.call("EVALSHA", self.sha, len(keys), *keys, *arguments, retry=retry)
        except NoScriptError:  # a new or restarted server: EVAL also caches the script
            return connections.call("EVAL", self.source, len(keys), *keys, *arguments, retry=retry)


COUNT = Script(COUNT_SCRIPT)
REFUND = Script(REFUND_SCRIPT)


class RedisCounter:
    """Counters on coordhub's Redis cache, under its key prefix and version."""

    def __init__(self, redis_cache: RedisCache, expiry_seconds: int) -> None:
        self.cache = redis_cache
        self.expiry_seconds = expiry_seconds
        pool = redis_cache.client.get_client(write=True).connection_pool
        self.connections = Connections(pool.connection_class, pool.connection_kwargs)

    def add(self, keys: list[str]) -> list[int]:
        cache_keys = [self.cache.make_key(key) for key in keys]
        return COUNT.run(self.connections, cache_keys, 1, self.expiry_seconds)

    def get(self, key: str) -> int:
        return int(self.connections.call("GET", self.cache.make_key(key)) or 0)

    def refund(self, key: str) -> int:
        # Never sent twice: a refund whose reply was lost may have been made, and one made
        # twice would let one start more through.
        return REFUND.run(self.connections, [self.cache.make_key(key)], retry=False)
