"""Browsers sign in and out on coordhub's own pages; the admin's login stays for staff."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


@pytest.fixture
def ada(django_user_model):
    """A user who is not staff."""
    return django_user_model.objects.create_user("ada", password=PASSWORD)


@pytest.fixture
def browser() -> Client:
    return Client(enforce_csrf_checks=True)


def csrf_token(page) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]


def sign_in(browser: Client, username: str, password: str, next_url: str = "/"):
    page = browser.get(f"/accounts/login/?next={next_url}")
    return browser.post(
        "/accounts/login/",
        {
            "username": username,
            "password": password,
            "next": next_url,
            "csrfmiddlewaretoken": csrf_token(page),
        },
    )


def test_anonymous_browsers_are_sent_to_the_sign_in_page(client, configure):
    configure(allow_anonymous=False)

    response = client.get("/")

    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/")


def test_a_user_who_is_not_staff_signs_in_and_sees_the_dashboard(browser, configure, ada):
    configure(allow_anonymous=False)

    answer = sign_in(browser, "ada", PASSWORD)
    dashboard = browser.get("/")

    assert (answer.status_code, answer["Location"]) == (302, "/")
    assert dashboard.status_code == 200
    assert "Signed in as ada" in dashboard.text
    assert 'id="logout-form" class="logout" method="post" action="/accounts/logout/"' in (
        dashboard.text
    )


def test_the_sign_in_page_is_a_labelled_form_in_the_sites_style(client):
    page = client.get("/accounts/login/?next=/")

    assert page.status_code == 200
    assert '<link rel="stylesheet" href="/static/coordhub/coordhub.css">' in page.text
    assert '<label for="id_username">' in page.text
    assert '<label for="id_password">' in page.text
    assert '<input type="hidden" name="next" value="/">' in page.text


def test_a_wrong_password_is_explained_and_linked_to_the_form(browser, ada):
    answer = sign_in(browser, "ada", "wrong password")

    assert answer.status_code == 200
    assert 'aria-describedby="sign-in-error"' in answer.text
    assert '<div id="sign-in-error" role="alert">' in answer.text
    assert "Please enter a correct username and password" in answer.text


def test_a_missing_field_error_is_linked_to_its_input(client):
    answer = client.post("/accounts/login/", {"username": "", "password": PASSWORD})

    assert 'aria-describedby="id_username_error"' in answer.text
    assert 'id="id_username_error"' in answer.text


def test_sign_out_ends_the_session(browser, configure, ada):
    configure(allow_anonymous=False)
    sign_in(browser, "ada", PASSWORD)
    dashboard = browser.get("/")

    answer = browser.post("/accounts/logout/", {"csrfmiddlewaretoken": csrf_token(dashboard)})

    assert (answer.status_code, answer["Location"]) == (302, "/accounts/login/")
    assert browser.get("/")["Location"] == "/accounts/login/?next=/"


def test_the_admin_login_still_refuses_users_who_are_not_staff(client, ada):
    answer = client.post(
        "/admin/login/?next=/admin/", {"username": "ada", "password": PASSWORD, "next": "/admin/"}
    )

    assert answer.status_code == 200
    assert "_auth_user_id" not in client.session
