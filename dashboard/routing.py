"""WebSocket paths: the leader tab's nudge channel, and a refusal for any other."""

from django.urls import path, re_path

from dashboard.consumers import LiveConsumer, NoSuchSocket

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
    re_path(r"", NoSuchSocket.as_asgi()),
]
