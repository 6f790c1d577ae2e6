"""The configuration checks, run as `manage.py check` in a fresh process."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

from coordhub.testing.environment import without_configuration

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **environ: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=without_configuration() | environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_configuration_passes_the_checks():
    result = manage("check")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_zero_requests_per_minute_fails_naming_the_variable():
    result = manage("check", REQUESTS_PER_MINUTE="0")

    assert result.returncode != 0
    assert "coordhub.E002" in result.stderr
    assert "REQUESTS_PER_MINUTE is 0 (from environment REQUESTS_PER_MINUTE)" in result.stderr


def test_every_problem_is_reported_at_once():
    result = manage(
        "check",
        MAX_CONCURRENT_OPERATIONS="-1",
        POLL_MULTIPLIER="1.0",
        POLL_MAX_INTERVAL_MS="1000",
        SLOT_LEASE_SECONDS="thirty",
    )

    assert result.returncode != 0
    for expected in ("coordhub.E001", "coordhub.E002", "coordhub.E003", "coordhub.E004"):
        assert expected in result.stderr
    assert "MAX_CONCURRENT_OPERATIONS is -1" in result.stderr
    assert "'thirty'" in result.stderr


def test_production_without_database_url_or_secret_key_fails():
    result = manage("check", COORDHUB_ENV="production")

    assert result.returncode != 0
    assert "coordhub.E006" in result.stderr
    assert "DATABASE_URL" in result.stderr
    assert "coordhub.E007" in result.stderr


def test_staging_without_secret_key_fails_naming_the_profile():
    result = manage("check", COORDHUB_ENV="staging")

    assert result.returncode != 0
    assert "coordhub.E007" in result.stderr
    assert "The staging profile needs SECRET_KEY; it is unset." in result.stderr


def test_staging_with_a_secret_key_passes_that_check():
    result = manage("check", COORDHUB_ENV="staging", SECRET_KEY="s3cret-" * 8)

    assert "coordhub.E007" not in result.stderr


def test_several_web_processes_on_a_local_memory_cache_fail():
    result = manage("check", WEB_CONCURRENCY="4")

    assert result.returncode != 0
    assert "coordhub.E008" in result.stderr
    assert "REDIS_URL" in result.stderr


def test_unknown_profile_warns_but_passes():
    result = manage("check", COORDHUB_ENV="qa")

    assert result.returncode == 0
    assert "coordhub.W001" in result.stderr


def test_coordhub_config_reports_production_limits(postgres_url):
    result = manage(
        "coordhub_config",
        "--json",
        COORDHUB_ENV="production",
        DATABASE_URL=postgres_url,
        SECRET_KEY="x" * 50,
    )

    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["profile"] == "production"
    assert described["settings"]["requests_per_minute"] == {
        "value": 2,
        "source": "default (production)",
        "variable": "REQUESTS_PER_MINUTE",
    }
    assert described["settings"]["max_concurrent_operations"]["value"] == 2


def test_coordhub_config_table_names_each_source():
    result = manage("coordhub_config", REQUESTS_PER_MINUTE="12")

    assert result.returncode == 0, result.stderr
    assert "profile: development" in result.stdout
    line = next(
        line
        for line in result.stdout.splitlines()
        if "REQUESTS_PER_MINUTE" in line and "READ_" not in line
    )
    assert line.split() == ["REQUESTS_PER_MINUTE", "12", "environment", "REQUESTS_PER_MINUTE"]


def test_saved_configuration_loads_back_as_a_config_file(tmp_path):
    saved = tmp_path / "saved.json"

    first = manage(
        "coordhub_config",
        "--save",
        str(saved),
        COORDHUB_ENV="staging",
        SECRET_KEY="s3cret-" * 8,  # staging refuses to run on the development key
        MAX_CONCURRENT_OPERATIONS="7",
    )
    second = manage("coordhub_config", "--json", COORDHUB_CONFIG_FILE=str(saved))

    assert first.returncode == 0, first.stderr
    assert "database_url" not in json.loads(saved.read_text())
    settings = json.loads(second.stdout)["settings"]
    assert settings["max_concurrent_operations"]["value"] == 7
    assert settings["max_concurrent_operations"]["source"] == f"file {saved}"
    assert settings["allow_anonymous"]["value"] is False


def test_nonsense_trusted_proxies_fail_the_checks_naming_the_value():
    result = manage("check", TRUSTED_PROXIES="10.0.0.0/8,nonsense")

    assert result.returncode != 0
    assert "coordhub.E009" in result.stderr
    assert "TRUSTED_PROXIES has 'nonsense'" in result.stderr


def test_proxy_addresses_and_networks_pass_the_checks():
    result = manage("check", TRUSTED_PROXIES="10.0.0.5, 10.1.0.0/16, fd00::/8")

    assert result.returncode == 0, result.stderr


def test_more_slots_than_the_table_can_number_fails_the_checks():
    result = manage("check", MAX_CONCURRENT_OPERATIONS="40000")

    assert result.returncode != 0
    assert "coordhub.E011" in result.stderr
    assert "MAX_CONCURRENT_OPERATIONS is 40000" in result.stderr


def production_environment(postgres_url: str, redis_url: str) -> dict[str, str]:
    """The environment the README documents for production behind an HTTPS proxy."""
    return {
        "COORDHUB_ENV": "production",
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "coordhub.example.com",
        "TRUSTED_PROXIES": "10.0.0.0/8",
        "CSRF_TRUSTED_ORIGINS": "https://coordhub.example.com",
    }


def test_the_documented_production_environment_passes_the_deployment_checks(
    postgres_url, redis_url
):
    # check does not connect: the throwaway servers' URLs only have to parse.
    result = manage("check", "--deploy", **production_environment(postgres_url, redis_url))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "System check identified no issues" in result.stdout


def test_a_trusted_origin_that_is_not_an_origin_fails_naming_it():
    result = manage("check", CSRF_TRUSTED_ORIGINS="https://ok.example.com,example.com/admin")

    assert result.returncode != 0
    assert "coordhub.E012" in result.stderr
    assert "CSRF_TRUSTED_ORIGINS has 'example.com/admin'" in result.stderr
    assert "ok.example.com'" not in result.stderr


def test_negative_hsts_seconds_fail():
    result = manage("check", HSTS_SECONDS="-1")

    assert result.returncode != 0
    assert "coordhub.E013" in result.stderr
    assert "HSTS_SECONDS is -1 (from environment HSTS_SECONDS)" in result.stderr


def test_the_https_redirect_without_trusted_proxies_warns():
    result = manage("check", SECURE_SSL_REDIRECT="true")

    assert result.returncode == 0
    assert "coordhub.W004" in result.stderr
    assert "TRUSTED_PROXIES is empty" in result.stderr


def test_a_share_of_no_slot_or_of_more_slots_than_there_are_fails():
    for share in ("0", "4"):
        result = manage("check", MAX_CONCURRENT_OPERATIONS="3", MAX_SLOTS_PER_CLIENT=share)

        assert result.returncode != 0
        assert "coordhub.E015" in result.stderr
        assert f"MAX_SLOTS_PER_CLIENT is {share} (from environment MAX_SLOTS_PER_CLIENT)" in (
            result.stderr
        )


def test_an_empty_line_bound_fails_naming_the_variable():
    result = manage("check", MAX_WAITING_OPERATIONS="0")

    assert result.returncode != 0
    assert "MAX_WAITING_OPERATIONS is 0" in result.stderr
