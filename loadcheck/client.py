"""Talk to a deployment: the HTTP client, and naming what it answered."""

from __future__ import annotations

import re
from typing import Any

import httpx

TIMEOUT_SECONDS = 10.0


class Unreachable(Exception):
    """The deployment did not answer at all."""


def connect(url: str, api_key: str | None = None) -> httpx.Client:
    """Return a client for the deployment at `url`, sending the API key if given."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT_SECONDS)


def reason(exc: httpx.TransportError) -> str:
    """Say why a request got no answer, e.g. 'connection refused'."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {TIMEOUT_SECONDS:g} s"
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]


def describe(response: httpx.Response) -> str:
    """Name a response by status and, for a coordhub error, its code and detail."""
    body = json_or_none(response)
    if isinstance(body, dict) and "error" in body:
        detail = str(body.get("detail", "")).rstrip(".")
        return f"{response.status_code} {body['error']}: {detail}".rstrip(": ")
    if response.is_redirect:
        return f"{response.status_code} to {response.headers.get('Location', 'nowhere')}"
    return f"{response.status_code}"


def json_or_none(response: httpx.Response) -> Any:
    """Return the decoded JSON body, or None if the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
