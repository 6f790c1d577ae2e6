"""X-Forwarded-Proto is believed only from a trusted proxy, and HTTPS sign-in works behind one."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.test import Client, RequestFactory

from coordhub.config import load_config
from coordhub.proxy import trusted_proxy_middleware

HOST = "coordhub.example.com"
PROXY = "10.0.0.5"
STRANGER = "203.0.113.7"


def seen_by_the_view(remote_addr: str, **headers: str) -> dict:
    """Return what a view behind the middleware sees of a request from `remote_addr`."""
    request = RequestFactory().get("/", REMOTE_ADDR=remote_addr, headers=headers)
    seen = {}

    def view(request):
        seen.update(forwarded="HTTP_X_FORWARDED_PROTO" in request.META, secure=request.is_secure())

    trusted_proxy_middleware(view)(request)
    return seen


@pytest.mark.parametrize("remote_addr", [STRANGER, "10.0.0.6", "", "not-an-address"])
def test_a_forwarded_scheme_from_an_untrusted_peer_is_deleted(configure, remote_addr):
    configure(trusted_proxies=PROXY)

    assert seen_by_the_view(remote_addr, x_forwarded_proto="https") == {
        "forwarded": False,
        "secure": False,
    }


def test_a_forwarded_scheme_from_a_trusted_proxy_makes_the_request_secure(configure):
    configure(trusted_proxies="10.0.0.0/24")

    assert seen_by_the_view(PROXY, x_forwarded_proto="https") == {
        "forwarded": True,
        "secure": True,
    }


def test_without_trusted_proxies_no_peer_is_believed(configure):
    configure(trusted_proxies="")

    assert seen_by_the_view("127.0.0.1", x_forwarded_proto="https")["secure"] is False


def test_the_middleware_runs_before_anything_that_asks_whether_a_request_is_secure():
    assert django_settings.MIDDLEWARE[0] == "coordhub.proxy.trusted_proxy_middleware"
    assert django_settings.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.fixture
def production(settings, configure):
    """Apply the Django settings coordhub derives from the production profile behind a proxy."""
    config = load_config(
        {"COORDHUB_ENV": "production", "ALLOWED_HOSTS": HOST, "TRUSTED_PROXIES": PROXY},
        settings.BASE_DIR,
    )
    configure(trusted_proxies=config.trusted_proxies)
    settings.ALLOWED_HOSTS = [HOST]
    settings.CSRF_TRUSTED_ORIGINS = config.trusted_origins
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = config.secure_cookies
    settings.SECURE_SSL_REDIRECT = config.secure_ssl_redirect
    settings.SECURE_HSTS_SECONDS = config.hsts_seconds
    return settings


def admin_sign_in(remote_addr: str) -> tuple:
    """Open the admin's login page and sign in through it as a browser behind `remote_addr`."""
    browser = Client(
        enforce_csrf_checks=True,
        REMOTE_ADDR=remote_addr,
        headers={"host": HOST, "x-forwarded-proto": "https"},
    )
    page = browser.get("/admin/login/?next=/admin/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    answer = browser.post(
        "/admin/login/?next=/admin/",
        {
            "username": "grace",
            "password": "correct horse battery",
            "csrfmiddlewaretoken": token[1] if token else "",
            "next": "/admin/",
        },
        headers={"origin": f"https://{HOST}", "referer": f"https://{HOST}/admin/login/"},
    )
    return page, answer


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "grace", password="correct horse battery", is_staff=True
    )


@pytest.mark.django_db
def test_admin_sign_in_over_https_through_a_trusted_proxy_succeeds(production, staff):
    page, answer = admin_sign_in(PROXY)

    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000"
    assert page.cookies["csrftoken"]["secure"]
    assert (answer.status_code, answer["Location"]) == (302, "/admin/")
    assert answer.cookies["sessionid"]["secure"]


@pytest.mark.django_db
def test_a_peer_that_is_not_a_proxy_is_sent_to_https_not_believed(production, staff):
    page, answer = admin_sign_in(STRANGER)

    assert (page.status_code, page["Location"]) == (
        301,
        f"https://{HOST}/admin/login/?next=/admin/",
    )
    assert answer.status_code == 301
    assert "sessionid" not in answer.cookies


@pytest.mark.django_db
def test_without_the_redirect_a_forged_scheme_fails_the_csrf_origin_check(
    production, staff, caplog
):
    production.SECURE_SSL_REDIRECT = False

    page, answer = admin_sign_in(STRANGER)

    assert page.status_code == 200
    assert answer.status_code == 403
    assert f"Origin checking failed - https://{HOST} does not match" in caplog.text
    assert "sessionid" not in answer.cookies
