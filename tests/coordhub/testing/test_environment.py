from __future__ import annotations

import pytest

from coordhub.config import setting_fields
from coordhub.testing.environment import (
    CONFIGURATION_VARIABLES,
    child_environment,
    without_configuration,
)


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell that exported coordhub configuration and an unrelated variable."""
    for variable, value in {
        "DATABASE_URL": "postgres://elsewhere/db",
        "MAX_CONCURRENT_OPERATIONS": "99",
        "ENV": "production",
        "COORDHUB_CONFIG_FILE": "/etc/coordhub.json",
        "SECRET_KEY": "from-the-shell",
        "UNRELATED": "kept",
    }.items():
        monkeypatch.setenv(variable, value)


def test_every_setting_variable_is_a_configuration_variable():
    variables = {spec.metadata["variable"] for spec in setting_fields()}

    assert variables <= CONFIGURATION_VARIABLES
    assert {"COORDHUB_ENV", "ENVIRONMENT", "ENV", "COORDHUB_CONFIG_FILE", "SECRET_KEY"} <= (
        CONFIGURATION_VARIABLES
    )


@pytest.mark.usefixtures("configured")
def test_without_configuration_drops_coordhub_variables_and_keeps_the_rest():
    environ = without_configuration()

    assert not CONFIGURATION_VARIABLES & environ.keys()
    assert environ["UNRELATED"] == "kept"


@pytest.mark.usefixtures("configured")
def test_a_child_gets_the_testing_profile_and_only_the_settings_it_is_given():
    environ = child_environment(DATABASE_URL="sqlite:///child.sqlite3")

    assert environ["DATABASE_URL"] == "sqlite:///child.sqlite3"
    assert environ["COORDHUB_ENV"] == "testing"
    assert environ["PYTHONUNBUFFERED"] == "1"
    assert environ["UNRELATED"] == "kept"
    for variable in ("MAX_CONCURRENT_OPERATIONS", "ENV", "COORDHUB_CONFIG_FILE", "SECRET_KEY"):
        assert variable not in environ


def test_a_child_uses_coordhub_settings_unless_given_a_settings_module(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "somewhere.settings")

    assert "DJANGO_SETTINGS_MODULE" not in child_environment()
    given = child_environment(DJANGO_SETTINGS_MODULE="bench.settings", COORDHUB_ENV="staging")
    assert given["DJANGO_SETTINGS_MODULE"] == "bench.settings"
    assert given["COORDHUB_ENV"] == "staging"
