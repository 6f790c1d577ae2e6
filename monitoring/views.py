"""The monitoring endpoints: health, the templates' reports, Prometheus text and the charts."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.pipeline import allow_methods, read_limited, signed_in
from monitoring import reports
from monitoring.drawing import chart_context
from monitoring.health import run_checks
from monitoring.prometheus import CoordhubCollector
from operations.exceptions import Forbidden

WHY_HIDDEN = "Staff and API-key callers see why each failed check failed."


def sees_errors(request: HttpRequest) -> bool:
    """Whether this caller may read the checks' error text (staff and API keys)."""
    return request.user.is_staff or hasattr(request, "api_key")


def staff_or_api_key(view: Callable) -> Callable:
    """Where anonymous use is off, keep a view to staff and API keys (after `signed_in`)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (settings.COORDHUB.allow_anonymous or sees_errors(request)):
            raise Forbidden("Metrics are for staff and API keys where anonymous use is off.")
        return view(request, *args, **kwargs)

    return wrapper


@allow_methods("GET")
def health(request: HttpRequest) -> JsonResponse:
    """Answer 200 when every part works, 503 naming the parts that do not."""
    checks = run_checks(with_errors=sees_errors(request))
    failed = sorted(name for name, result in checks.items() if result["status"] != "up")
    body = {
        "status": "degraded" if failed else "healthy",
        "timestamp": timezone.now().isoformat(),
        **reports.health_figures(),
        "checks": checks,
        "failed": failed,
    }
    if failed and not sees_errors(request):
        body["detail"] = f"Failed: {', '.join(failed)}. {WHY_HIDDEN}"
    return JsonResponse(body, status=503 if failed else 200)


@allow_methods("GET")
@never_cache
@staff_member_required
def health_page(request: HttpRequest) -> TemplateResponse:
    """The health checks as a page of the admin, each failed one with its reason."""
    checks = run_checks(with_errors=True)
    context = {
        **admin.site.each_context(request),
        **reports.health_figures(),
        "title": "Health",
        "checks": checks,
        "failed": sorted(name for name, result in checks.items() if result["status"] != "up"),
        "checked_at": timezone.now(),
    }
    return TemplateResponse(request, "monitoring/health_page.html", context)


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
@signed_in
@staff_or_api_key
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the slot, operation and lifetime figures.

    A scraper sends an API key (`authorization` in Prometheus's scrape config); without
    credentials it gets a 401 with a Bearer challenge, never a sign-in page.
    """
    registry = CollectorRegistry()
    registry.register(CoordhubCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@allow_methods("GET")
@signed_in
@read_limited
def charts(request: HttpRequest) -> HttpResponse:
    """The dashboard's charts panel for `?range=hour|day`, for htmx to swap in; 400 for others."""
    return render(request, "monitoring/charts.html", chart_context(request.GET.get("range")))
