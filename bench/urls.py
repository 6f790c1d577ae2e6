"""coordhub's URLs plus the baselines the benchmarks divide by.

`/bench/minimal` is the cheapest JSON answer the stack can give (every middleware still
runs); `/bench/limited` is the same view behind the read limit's check, so
limited / unlimited is the cost of one django-ratelimit spend.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

from api import limits
from api.limits import RateLimitUnavailable


@require_GET
def minimal(request: HttpRequest) -> HttpResponse:
    """Answer a tiny JSON object."""
    return JsonResponse({"ok": True})


@require_GET
def limited(request: HttpRequest) -> HttpResponse:
    """Spend one read from the client's budget, then answer as `minimal` does."""
    try:
        usage = limits.spend(request, limits.READ)
    except RateLimitUnavailable:
        return JsonResponse({"error": "rate_limit_unavailable"}, status=503)
    if usage and usage.exceeded:
        return JsonResponse({"error": "rate_limited"}, status=429)
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/minimal", minimal),
    path("bench/unlimited", minimal),
    path("bench/limited", limited),
    path("", include("coordhub.urls")),
]

handler404 = "api.views.not_found"
