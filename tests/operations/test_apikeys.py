"""Issuing API keys and finding the key a secret belongs to."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from operations import apikeys
from operations.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada")


def test_only_the_digest_of_a_key_is_stored(ada):
    key, secret = apikeys.issue(ada, "ci")

    stored = ApiKey.objects.filter(pk=key.pk).values().get()

    assert secret.startswith("chk_")
    assert stored["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    for column, value in stored.items():
        assert secret not in str(value), column


def test_a_secret_finds_its_key_until_the_key_is_revoked(ada):
    key, secret = apikeys.issue(ada, "ci")

    assert apikeys.authenticate(secret) == key
    assert apikeys.authenticate(secret + "x") is None
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert apikeys.authenticate(secret) is None


def test_last_use_is_written_at_most_once_a_minute(ada):
    key, secret = apikeys.issue(ada, "ci")
    apikeys.authenticate(secret)
    first = ApiKey.objects.get(pk=key.pk).last_used_at

    apikeys.authenticate(secret)
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first

    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    apikeys.authenticate(secret)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first


def test_the_command_prints_a_secret_that_authenticates_as_the_user(django_user_model):
    ada = django_user_model.objects.create_user("ada", password="x")
    out, err = io.StringIO(), io.StringIO()

    call_command("coordhub_apikey", "ada", "--name", "nightly report", stdout=out, stderr=err)

    secret = out.getvalue().strip()
    assert apikeys.authenticate(secret).user == ada
    assert apikeys.authenticate(secret).name == "nightly report"
    assert secret not in err.getvalue()


@pytest.mark.parametrize("active", [None, False])
def test_the_command_refuses_an_unknown_or_inactive_user(django_user_model, active):
    if active is not None:
        django_user_model.objects.create_user("ada", password="x", is_active=active)

    with pytest.raises(CommandError, match="'ada'"):
        call_command("coordhub_apikey", "ada", stdout=io.StringIO(), stderr=io.StringIO())
