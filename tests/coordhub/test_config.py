from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordhub.config import Config, load_config, mask_url_password


def load(tmp_path: Path, **environ: str) -> Config:
    return load_config(environ, tmp_path)


def write_config(tmp_path: Path, profile: str, values: dict) -> Path:
    path = tmp_path / "config" / f"{profile}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(values))
    return path


@pytest.mark.parametrize(
    ("profile", "rpm", "slots", "cleanup", "limiting", "anonymous", "level"),
    [
        ("development", 10, 5, 1800, False, True, "DEBUG"),
        ("testing", 5, 3, 900, True, True, "DEBUG"),
        ("staging", 3, 2, 3600, True, False, "INFO"),
        ("production", 2, 2, 3600, True, False, "WARNING"),
    ],
)
def test_profiles_have_the_designed_defaults(
    tmp_path, profile, rpm, slots, cleanup, limiting, anonymous, level
):
    config = load(tmp_path, COORDHUB_ENV=profile)

    assert config.profile == profile
    assert (config.requests_per_minute, config.max_concurrent_operations) == (rpm, slots)
    assert config.cleanup_interval_seconds == cleanup
    assert config.enable_rate_limiting is limiting
    assert config.allow_anonymous is anonymous
    assert config.log_level == level
    assert (config.slot_lease_seconds, config.operation_timeout_seconds) == (30, 7200)
    assert config.read_requests_per_minute == 120
    assert (config.poll_initial_interval_ms, config.poll_max_interval_ms) == (5000, 30000)
    assert (config.poll_multiplier, config.poll_max_attempts) == (1.2, 100)


def test_profile_comes_from_the_first_variable_set(tmp_path):
    assert load(tmp_path).profile == "development"
    assert load(tmp_path, ENV="staging").profile == "staging"
    assert load(tmp_path, ENV="staging", ENVIRONMENT="testing").profile == "testing"
    assert load(tmp_path, ENVIRONMENT="testing", COORDHUB_ENV="Production").profile == "production"


def test_unknown_profile_warns_and_falls_back_to_development(tmp_path):
    config = load(tmp_path, COORDHUB_ENV="prod")

    assert config.profile == "development"
    assert [problem.id for problem in config.problems] == ["coordhub.W001"]
    assert "'prod'" in config.problems[0].msg
    assert "COORDHUB_ENV" in config.problems[0].msg


def test_file_beats_profile_default_and_environment_beats_both(tmp_path):
    path = write_config(
        tmp_path, "testing", {"requests_per_minute": 7, "max_concurrent_operations": 4}
    )

    config = load(tmp_path, COORDHUB_ENV="testing", MAX_CONCURRENT_OPERATIONS="9")

    assert config.requests_per_minute == 7
    assert config.sources["requests_per_minute"] == f"file {path}"
    assert config.max_concurrent_operations == 9
    assert config.sources["max_concurrent_operations"] == "environment MAX_CONCURRENT_OPERATIONS"
    assert config.cleanup_interval_seconds == 900
    assert config.sources["cleanup_interval_seconds"] == "default (testing)"


def test_config_file_variable_names_another_file(tmp_path):
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps({"enable_rate_limiting": True, "poll_multiplier": 1.5}))

    config = load(tmp_path, COORDHUB_CONFIG_FILE=str(other))

    assert config.config_file == str(other)
    assert config.enable_rate_limiting is True
    assert config.poll_multiplier == 1.5


def test_missing_named_config_file_is_an_error(tmp_path):
    config = load(tmp_path, COORDHUB_CONFIG_FILE="nowhere.json")

    assert [problem.id for problem in config.problems] == ["coordhub.E010"]
    assert "does not exist" in config.problems[0].msg


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_unreadable_config_file_is_an_error(tmp_path, content):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "development.json").write_text(content)

    config = load(tmp_path)

    assert [problem.id for problem in config.problems] == ["coordhub.E010"]
    assert config.requests_per_minute == 10


def test_unknown_key_in_config_file_warns(tmp_path):
    write_config(tmp_path, "development", {"requests_per_minit": 3})

    config = load(tmp_path)

    assert [problem.id for problem in config.problems] == ["coordhub.W002"]
    assert "'requests_per_minit'" in config.problems[0].msg


@pytest.mark.parametrize(
    ("variable", "raw"),
    [("REQUESTS_PER_MINUTE", "ten"), ("ENABLE_RATE_LIMITING", "maybe"), ("POLL_MULTIPLIER", "x")],
)
def test_unparsable_environment_value_is_reported_and_the_default_kept(tmp_path, variable, raw):
    config = load(tmp_path, **{variable: raw})

    assert [problem.id for problem in config.problems] == ["coordhub.E001"]
    assert variable in config.problems[0].msg
    assert repr(raw) in config.problems[0].msg
    assert config.sources[variable.lower()] == "default (development)"


def test_booleans_accept_common_words(tmp_path):
    assert load(tmp_path, ENABLE_RATE_LIMITING="yes").enable_rate_limiting is True
    assert (
        load(tmp_path, COORDHUB_ENV="testing", ENABLE_RATE_LIMITING="off").enable_rate_limiting
        is False
    )


def test_wrong_json_type_in_file_is_reported(tmp_path):
    write_config(tmp_path, "development", {"max_concurrent_operations": True})

    config = load(tmp_path)

    assert [problem.id for problem in config.problems] == ["coordhub.E001"]
    assert config.max_concurrent_operations == 5


def test_log_level_is_case_insensitive_and_checked(tmp_path):
    assert load(tmp_path, LOG_LEVEL="info").log_level == "INFO"
    assert [p.id for p in load(tmp_path, LOG_LEVEL="loud").problems] == ["coordhub.E001"]


def test_masking_hides_only_the_password():
    assert mask_url_password("postgres://app:s3cret@db:5432/x") == "postgres://app:***@db:5432/x"
    assert mask_url_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_printed_configuration_masks_url_passwords(tmp_path):
    config = load(tmp_path, DATABASE_URL="postgres://a:b@h/d")

    assert config.database_url == "postgres://a:b@h/d"
    assert config.as_dict()["database_url"] == "postgres://a:***@h/d"


@pytest.mark.parametrize(
    ("profile", "secure", "hsts"),
    [
        ("development", False, 0),
        ("testing", False, 0),
        ("staging", True, 31536000),
        ("production", True, 31536000),
    ],
)
def test_https_is_on_in_staging_and_production_only(tmp_path, profile, secure, hsts):
    config = load(tmp_path, COORDHUB_ENV=profile)

    assert (config.secure_cookies, config.secure_ssl_redirect, config.hsts_seconds) == (
        secure,
        secure,
        hsts,
    )
    assert config.trusted_origins == []


def test_trusted_origins_are_read_as_a_list(tmp_path):
    config = load(
        tmp_path, CSRF_TRUSTED_ORIGINS=" https://a.example.com, ,https://b.example.com:8443"
    )

    assert config.trusted_origins == ["https://a.example.com", "https://b.example.com:8443"]
    assert config.sources["csrf_trusted_origins"] == "environment CSRF_TRUSTED_ORIGINS"


@pytest.mark.parametrize(
    ("profile", "slots", "share"),
    [
        ("development", "7", 7),
        ("testing", "7", 7),
        ("staging", "7", 4),
        ("production", "7", 4),
        ("production", "1", 1),
    ],
)
def test_a_clients_share_is_every_slot_or_half_rounded_up_of_however_many_there_are(
    tmp_path, profile, slots, share
):
    config = load(tmp_path, COORDHUB_ENV=profile, MAX_CONCURRENT_OPERATIONS=slots)

    assert config.max_slots_per_client == share
    assert config.sources["max_slots_per_client"] == f"default ({profile})"
    assert (config.max_waiting_per_client, config.max_waiting_operations) == (100, 1000)


def test_a_share_set_in_the_environment_is_kept_as_set(tmp_path):
    config = load(tmp_path, COORDHUB_ENV="production", MAX_SLOTS_PER_CLIENT="2")

    assert config.max_slots_per_client == 2
    assert config.sources["max_slots_per_client"] == "environment MAX_SLOTS_PER_CLIENT"
