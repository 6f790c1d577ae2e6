"""Fixtures for the monitoring tests."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest


@pytest.fixture
def start_one(client, configure, django_capture_on_commit_callbacks) -> Callable[[], dict]:
    """Three slots and no limits; return a function that starts one operation through the API."""
    configure(max_concurrent_operations=3, enable_rate_limiting=False, allow_anonymous=True)

    def start() -> dict:
        body = json.dumps({"kind": "simulated", "params": {}})
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/operations", body, content_type="application/json")
        assert response.status_code == 202, response.content
        return response.json()

    return start
