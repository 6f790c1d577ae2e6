"""The dashboard pages."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Render the dashboard."""
    return render(request, "dashboard/index.html", {"config": settings.COORDHUB})
