"""Serve the OpenAPI description of coordhub's HTTP API, kept beside it as `openapi.yaml`."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse

from api.pipeline import allow_methods

DESCRIPTION = Path(__file__).with_name("openapi.yaml")
# RFC 9512's media type for YAML.
YAML = "application/yaml"


@cache
def description() -> bytes:
    """The description as stored; read once per process."""
    return DESCRIPTION.read_bytes()


@allow_methods("GET")
def schema(request: HttpRequest) -> HttpResponse:
    """OpenAPI 3.1 in YAML: every endpoint, body, answer and error code."""
    return HttpResponse(description(), content_type=f"{YAML}; charset=utf-8")
