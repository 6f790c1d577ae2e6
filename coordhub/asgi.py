"""ASGI entry point (daphne, uvicorn): HTTP to Django, the live socket to its consumer.

HTTP goes through the holding layer (`coordhub.holding`), which keeps waiting API
calls without a thread. WebSockets pass Django's allowed hosts and a same-origin
check, then session authentication; `/ws/live/` is the leader tab's nudge channel
and any other path is refused (closed with 4404 before the handshake completes).
Lifespan events are answered: coordhub needs neither startup nor shutdown work.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordhub.settings")
django_application = get_asgi_application()

# Imported once Django is set up: they use its models and settings.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from coordhub.holding import HoldingApplication  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def answer_lifespan(scope: Message, receive: Receive, send: Send) -> None:
    """Say startup and shutdown complete; coordhub needs neither (uvicorn sends them)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        "http": HoldingApplication(django_application),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
        "lifespan": answer_lifespan,
    }
)
