"""Connecting to a deployment and naming its answers."""

from __future__ import annotations

import httpx

from loadcheck.client import connect, describe


def test_an_api_key_is_sent_as_a_bearer_token():
    assert connect("http://coordhub.test", "k3y").headers["Authorization"] == "Bearer k3y"
    assert "Authorization" not in connect("http://coordhub.test").headers


def test_a_coordhub_error_is_named_by_status_code_and_detail():
    response = httpx.Response(401, json={"error": "invalid_api_key", "detail": "Unknown key."})

    assert describe(response) == "401 invalid_api_key: Unknown key"


def test_a_redirect_is_named_with_where_it_leads():
    response = httpx.Response(302, headers={"Location": "/accounts/login/?next=/"})

    assert describe(response) == "302 to /accounts/login/?next=/"
