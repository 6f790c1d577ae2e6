"""coordhub's URLs plus the baselines the benchmarks divide by.

`/bench/minimal` is the cheapest JSON answer the stack can give (every middleware still
runs); `/bench/limited` is the same view behind the read limit production uses, so
limited / unlimited is the cost of one django-ratelimit spend.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

from api.pipeline import read_limited


@require_GET
def minimal(request: HttpRequest) -> HttpResponse:
    """Answer a tiny JSON object."""
    return JsonResponse({"ok": True})


@require_GET
@read_limited
def limited(request: HttpRequest) -> HttpResponse:
    """Spend one read from the client's budget, then answer as `minimal` does."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/minimal", minimal),
    path("bench/unlimited", minimal),
    path("bench/limited", limited),
    path("", include("coordhub.urls")),
]

handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"
