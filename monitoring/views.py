"""The monitoring endpoints: health, the templates' reports, and Prometheus text."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.pipeline import allow_methods, signed_in
from monitoring import reports
from monitoring.health import run_checks
from monitoring.prometheus import CoordhubCollector


@allow_methods("GET")
def health(request: HttpRequest) -> JsonResponse:
    """Answer 200 when every part works, 503 naming the parts that do not."""
    checks = run_checks()
    failed = sorted(name for name, result in checks.items() if result["status"] != "up")
    body = {
        "status": "degraded" if failed else "healthy",
        "timestamp": timezone.now().isoformat(),
        **reports.health_figures(),
        "checks": checks,
        "failed": failed,
    }
    return JsonResponse(body, status=503 if failed else 200)


@allow_methods("GET")
@signed_in
def performance(request: HttpRequest) -> JsonResponse:
    """The templates' performance report: limits, concurrency, resources, system."""
    return JsonResponse(reports.performance())


@allow_methods("GET")
@signed_in
def resource_pool_metrics(request: HttpRequest) -> JsonResponse:
    """The templates' resource-pool report: configuration, status, lifetime, per slot."""
    return JsonResponse(reports.resource_pool())


@allow_methods("GET")
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the slot, operation and lifetime figures."""
    registry = CollectorRegistry()
    registry.register(CoordhubCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
