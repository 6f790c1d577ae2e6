"""ASGI entry point (daphne, uvicorn): HTTP to Django, WebSockets refused, lifespan answered."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordhub.settings")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# No path serves WebSockets yet; 4404 is "not found" in the 4000-4999 range ASGI leaves to us.
NO_WEBSOCKET_HERE = 4404

django_application = get_asgi_application()


async def application(scope: Message, receive: Receive, send: Send) -> None:
    """Hand HTTP to Django; refuse every WebSocket; answer lifespan events."""
    if scope["type"] == "websocket":
        await refuse_websocket(receive, send)
    elif scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
    else:
        # Django's own handler refuses any other type with ValueError, logged as an ERROR.
        await django_application(scope, receive, send)


async def refuse_websocket(receive: Receive, send: Send) -> None:
    """Close the connection before accepting it: the server answers the handshake 403."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": NO_WEBSOCKET_HERE})


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Say startup and shutdown complete; coordhub needs neither (uvicorn sends them)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
