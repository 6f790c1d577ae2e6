"""Believe `X-Forwarded-Proto` only from a trusted proxy.

Django's SECURE_PROXY_SSL_HEADER trusts the header from any peer, so a client
talking plain HTTP straight to the server could claim HTTPS. This middleware
runs first and deletes the header unless the direct peer (REMOTE_ADDR) is one
of TRUSTED_PROXIES, the same networks whose `X-Forwarded-For` is believed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

# The one reading of TRUSTED_PROXIES (coordhub.config.parse_networks), shared with X-Forwarded-For.
from api.clients import is_trusted_proxy

FORWARDED_PROTO = "HTTP_X_FORWARDED_PROTO"


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Say whether the direct peer of `request` is a trusted proxy."""
    return is_trusted_proxy(request.META.get("REMOTE_ADDR", ""))


def forget_untrusted_forwarded_proto(request: HttpRequest) -> None:
    """Delete `X-Forwarded-Proto` unless a trusted proxy sent it."""
    if FORWARDED_PROTO in request.META and not from_trusted_proxy(request):
        del request.META[FORWARDED_PROTO]


@sync_and_async_middleware
def trusted_proxy_middleware(
    get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]],
) -> Callable:
    """Strip the forwarded scheme of requests that did not come through a trusted proxy."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            forget_untrusted_forwarded_proto(request)
            return await get_response(request)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            forget_untrusted_forwarded_proto(request)
            return get_response(request)

    return middleware
