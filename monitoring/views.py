"""The monitoring endpoints: health, and the templates' performance and resource-pool reports."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from api.responses import allow_methods
from api.views import signed_in_unless_anonymous_allowed
from monitoring import reports
from monitoring.health import run_checks


@allow_methods("GET")
def health(request: HttpRequest) -> JsonResponse:
    """Answer 200 when every part works, 503 naming the parts that do not."""
    checks = run_checks()
    failed = sorted(name for name, result in checks.items() if result["status"] != "up")
    body = {
        "status": "degraded" if failed else "healthy",
        "timestamp": timezone.now().isoformat(),
        "checks": checks,
        "failed": failed,
    }
    return JsonResponse(body, status=503 if failed else 200)


@allow_methods("GET")
@signed_in_unless_anonymous_allowed
def performance(request: HttpRequest) -> JsonResponse:
    """The seed's performance report: limits, concurrency, resources, system."""
    return JsonResponse(reports.performance())


@allow_methods("GET")
@signed_in_unless_anonymous_allowed
def resource_pool_metrics(request: HttpRequest) -> JsonResponse:
    """The seed's resource-pool report: configuration, status, lifetime, per slot."""
    return JsonResponse(reports.resource_pool())
