"""The ASGI entry point: HTTP to Django, unknown WebSocket paths refused, lifespan answered."""

from __future__ import annotations

import asyncio
import socket
import time

from asgiref.testing import ApplicationCommunicator

from coordhub.asgi import application
from dashboard.consumers import NO_SUCH_SOCKET
from tests.live import LiveServer

WEBSOCKET_SCOPE = {
    "type": "websocket",
    "asgi": {"version": "3.0"},
    "scheme": "ws",
    "path": "/ws/anything",
    "raw_path": b"/ws/anything",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
    "subprotocols": [],
}
# daphne may write an application's traceback just after it answers.
LOG_SETTLE_SECONDS = 0.5
HANDSHAKE = (
    "GET /ws/anything HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Origin: http://127.0.0.1:{port}\r\n"
    "\r\n"
)


def test_a_websocket_to_an_unknown_path_is_closed_before_it_is_accepted():
    asyncio.run(websocket_is_closed())


def test_lifespan_startup_and_shutdown_are_answered():
    asyncio.run(lifespan_is_answered())


async def websocket_is_closed() -> None:
    communicator = ApplicationCommunicator(application, WEBSOCKET_SCOPE)
    await communicator.send_input({"type": "websocket.connect"})

    answer = await communicator.receive_output(timeout=5)

    assert answer == {"type": "websocket.close", "code": NO_SUCH_SOCKET}
    await communicator.wait(timeout=5)  # the application has returned: nothing left running


async def lifespan_is_answered() -> None:
    communicator = ApplicationCommunicator(application, {"type": "lifespan"})

    await communicator.send_input({"type": "lifespan.startup"})
    started = await communicator.receive_output(timeout=5)
    await communicator.send_input({"type": "lifespan.shutdown"})
    stopped = await communicator.receive_output(timeout=5)

    assert started == {"type": "lifespan.startup.complete"}
    assert stopped == {"type": "lifespan.shutdown.complete"}
    await communicator.wait(timeout=5)


def status_line(port: int, request: str) -> str:
    """Send `request` raw and return the first line of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


def test_a_websocket_handshake_to_an_unknown_path_is_refused_without_an_error_logged(tmp_path):
    server = LiveServer(tmp_path).start()
    try:
        logged_before = len(server.output())  # readiness polls may log a 503 before the worker
        line = status_line(server.port, HANDSHAKE.format(port=server.port))
        time.sleep(LOG_SETTLE_SECONDS)
        assert server.ready()  # the server still answers HTTP after the refusal
        logged = server.output()[logged_before:]
    finally:
        server.stop()

    assert line.startswith("HTTP/1.1 403"), line
    assert "ERROR" not in logged
    assert "Traceback" not in logged
