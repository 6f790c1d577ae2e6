"""System checks for the configuration, run by `manage.py check` and every server start."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from coordhub.config import MAX_WAIT_SECONDS, Config, Problem, parse_networks, setting_fields

# Slot.number is a PositiveSmallIntegerField: 32767 on PostgreSQL.
MOST_SLOTS = 32767

POSITIVE_SETTINGS = (
    "requests_per_minute",
    "read_requests_per_minute",
    "start_attempts_per_minute",
    "max_concurrent_operations",
    "max_waiting_per_client",
    "max_waiting_operations",
    "cleanup_interval_seconds",
    "slot_lease_seconds",
    "operation_timeout_seconds",
    "operation_retention_days",
    "poll_initial_interval_ms",
    "poll_max_interval_ms",
    "poll_max_attempts",
    "leader_heartbeat_ms",
    "leader_timeout_ms",
    "web_processes",
)


def variable(name: str) -> str:
    """Return the environment variable that sets `name`."""
    return next(spec.metadata["variable"] for spec in setting_fields() if spec.name == name)


def described(config: Config, name: str) -> str:
    """Return `VARIABLE is VALUE (from SOURCE)` for messages."""
    return f"{variable(name)} is {getattr(config, name)!r} (from {config.sources[name]})"


def message(problem: Problem) -> checks.CheckMessage:
    kind = checks.Warning if problem.warning else checks.Error
    return kind(problem.msg, hint=problem.hint or None, id=problem.id)


@checks.register("coordhub")
def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report every configuration problem at once."""
    config: Config = settings.COORDHUB
    found = [message(problem) for problem in config.problems]
    found += [
        checks.Error(
            f"{described(config, name)}; it must be a positive whole number.",
            hint=f"Set {variable(name)} to 1 or more.",
            id="coordhub.E002",
        )
        for name in POSITIVE_SETTINGS
        if getattr(config, name) <= 0
    ]
    if config.max_concurrent_operations > MOST_SLOTS:
        found.append(
            checks.Error(
                f"{described(config, 'max_concurrent_operations')}; the slot table numbers "
                f"its rows with small integers, so at most {MOST_SLOTS} slots can exist.",
                hint=f"Set MAX_CONCURRENT_OPERATIONS to {MOST_SLOTS} or less.",
                id="coordhub.E011",
            )
        )
    if not 1 <= config.max_slots_per_client <= max(1, config.max_concurrent_operations):
        found.append(
            checks.Error(
                f"{described(config, 'max_slots_per_client')}; one client may hold from 1 slot "
                f"to all {config.max_concurrent_operations}.",
                hint="Set MAX_SLOTS_PER_CLIENT between 1 and MAX_CONCURRENT_OPERATIONS.",
                id="coordhub.E015",
            )
        )
    if not 0 <= config.templates_wait_seconds <= MAX_WAIT_SECONDS:
        found.append(
            checks.Error(
                f"{described(config, 'templates_wait_seconds')}; a held request waits "
                f"0 to {MAX_WAIT_SECONDS} seconds.",
                hint=f"Set TEMPLATES_WAIT_SECONDS between 0 and {MAX_WAIT_SECONDS}.",
                id="coordhub.E014",
            )
        )
    if config.poll_multiplier <= 1.0:
        found.append(
            checks.Error(
                f"{described(config, 'poll_multiplier')}; polls would never back off.",
                hint="Set POLL_MULTIPLIER above 1.0 (1.2 is the default).",
                id="coordhub.E003",
            )
        )
    if config.poll_max_interval_ms < config.poll_initial_interval_ms:
        found.append(
            checks.Error(
                f"{described(config, 'poll_max_interval_ms')}, below "
                f"{described(config, 'poll_initial_interval_ms')}.",
                hint="The longest poll interval must be at least the first one.",
                id="coordhub.E004",
            )
        )
    if config.leader_timeout_ms <= config.leader_heartbeat_ms:
        found.append(
            checks.Error(
                f"{described(config, 'leader_timeout_ms')}, not above "
                f"{described(config, 'leader_heartbeat_ms')}; leadership would flap.",
                hint="Give the leader timeout at least two or three heartbeats.",
                id="coordhub.E005",
            )
        )
    found += proxy_problems(config)
    found += https_problems(config)
    found += production_problems(config)
    found += cache_problems(config)
    return found


def proxy_problems(config: Config) -> list[checks.CheckMessage]:
    """Every trusted proxy must be an address or a network."""
    _, unparsable = parse_networks(config.trusted_proxies)
    return [
        checks.Error(
            f"TRUSTED_PROXIES has {item!r}, which is not an IP address or network.",
            hint="List proxies as addresses or CIDR networks, e.g. 10.0.0.5,10.1.0.0/16.",
            id="coordhub.E009",
        )
        for item in unparsable
    ]


def production_problems(config: Config) -> list[checks.CheckMessage]:
    """Production needs its own database; staging and production their own secret key."""
    found = []
    if config.profile == "production" and not config.database_url:
        found.append(
            checks.Error(
                "The production profile needs DATABASE_URL; it is unset.",
                hint="Set DATABASE_URL, e.g. postgres://user:password@host:5432/coordhub.",
                id="coordhub.E006",
            )
        )
    # The development key is public: sessions and CSRF tokens signed with it can be forged.
    if config.profile in ("staging", "production") and (
        settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY
    ):
        found.append(
            checks.Error(
                f"The {config.profile} profile needs SECRET_KEY; it is unset.",
                hint="Set SECRET_KEY to a long random string kept out of the repository.",
                id="coordhub.E007",
            )
        )
    return found


def cache_problems(config: Config) -> list[checks.CheckMessage]:
    """Rate-limit counters must be shared by every web process."""
    if config.redis_url:
        return []
    if config.web_processes > 1:
        return [
            checks.Error(
                f"{described(config, 'web_processes')} but the cache is local memory, "
                "so each process would keep its own rate-limit counters.",
                hint="Set REDIS_URL so that every web process shares one cache.",
                id="coordhub.E008",
            )
        ]
    if config.database_url.startswith(("postgres", "postgis")):
        return [
            checks.Warning(
                "DATABASE_URL names PostgreSQL (scale-out mode) but REDIS_URL is unset: "
                "rate limits hold per web process only.",
                hint="Set REDIS_URL when more than one web process serves coordhub.",
                id="coordhub.W003",
            )
        ]
    return []


def https_problems(config: Config) -> list[checks.CheckMessage]:
    """Trusted origins must be origins; HSTS and the redirect must be usable."""
    found: list[checks.CheckMessage] = [
        checks.Error(
            f"CSRF_TRUSTED_ORIGINS has {origin!r}, which is not an origin "
            "(scheme and host, nothing after).",
            hint="List origins as https://host or https://host:port, e.g. "
            "https://coordhub.example.com.",
            id="coordhub.E012",
        )
        for origin in config.trusted_origins
        if not is_origin(origin)
    ]
    if config.hsts_seconds < 0:
        found.append(
            checks.Error(
                f"{described(config, 'hsts_seconds')}; it cannot be negative.",
                hint="Set HSTS_SECONDS to 0 (no header) or a max-age such as 31536000.",
                id="coordhub.E013",
            )
        )
    if config.secure_ssl_redirect and not config.trusted_proxies:
        found.append(
            checks.Warning(
                f"{described(config, 'secure_ssl_redirect')} but TRUSTED_PROXIES is empty: "
                "behind a TLS-terminating proxy every request would look like plain HTTP "
                "and be redirected to itself.",
                hint="Set TRUSTED_PROXIES to the proxy's addresses, or SECURE_SSL_REDIRECT "
                "to false if the proxy redirects plain HTTP itself.",
                id="coordhub.W004",
            )
        )
    return found


def is_origin(value: str) -> bool:
    """Say whether `value` is `scheme://host[:port]` as CSRF_TRUSTED_ORIGINS expects."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not (parts.path or parts.query or parts.fragment or parts.username)
    )
