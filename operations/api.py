"""The JSON API."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from operations.health import run_checks


@require_GET
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
