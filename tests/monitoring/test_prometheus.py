"""`GET /metrics`: Prometheus text from the database."""

from __future__ import annotations

import pytest

from operations import apikeys

pytestmark = pytest.mark.django_db


def test_prometheus_metrics_report_slots_and_operations(client, start_one):
    start_one()

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "coordhub_slots 3.0" in text
    assert "coordhub_slots_in_use 1.0" in text
    assert 'coordhub_operations{status="queued"} 1.0' in text
    assert 'coordhub_events_total{event="allocations"} 1.0' in text


@pytest.fixture
def anonymous_off(configure):
    configure(allow_anonymous=False)


@pytest.mark.usefixtures("anonymous_off")
def test_without_credentials_metrics_are_a_401_challenge_for_the_scraper(client):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="coordhub"'
    assert response.json()["error"] == "authentication_required"


@pytest.mark.usefixtures("anonymous_off")
def test_an_api_key_scrapes_the_metrics(client, django_user_model):
    _, secret = apikeys.issue(django_user_model.objects.create_user("prometheus"), "scrape")

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 200
    assert "coordhub_slots " in response.content.decode()


@pytest.mark.usefixtures("anonymous_off")
def test_staff_read_the_metrics_and_other_signed_in_users_do_not(
    admin_client, client, django_user_model
):
    client.force_login(django_user_model.objects.create_user("ada"))

    by_staff = admin_client.get("/metrics")
    by_user = client.get("/metrics")

    assert by_staff.status_code == 200
    assert by_user.status_code == 403
    assert by_user.json()["error"] == "forbidden"
