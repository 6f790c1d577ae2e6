"""Load the effective configuration: profile defaults < JSON file < environment.

Loading never raises. A value that cannot be used is recorded as a `Problem`
and the lower-precedence value stays in force, so that `manage.py check`
(see `coordhub/checks.py`) can report every problem at once.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from coordhub.coercion import SETTING_TYPES, coerce
from coordhub.profiles import COMMON_DEFAULTS, DEFAULT_PROFILE, PROFILE_DEFAULTS, PROFILES

# A request held for a change (api.holds) waits at most this long.
MAX_WAIT_SECONDS = 60

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PROFILE_VARIABLES = ("COORDHUB_ENV", "ENVIRONMENT", "ENV")
CONFIG_FILE_VARIABLE = "COORDHUB_CONFIG_FILE"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def setting(variable: str, help: str, *, secret: bool = False) -> Any:
    """Declare a configuration field read from `variable`."""
    return field(metadata={"variable": variable, "help": help, "secret": secret})


@dataclass(frozen=True, kw_only=True)
class Config:
    """The effective configuration, with where each value came from."""

    profile: str = DEFAULT_PROFILE

    requests_per_minute: int = setting(
        "REQUESTS_PER_MINUTE", "Start requests per minute per client."
    )
    start_attempts_per_minute: int = setting(
        "START_ATTEMPTS_PER_MINUTE",
        "Start attempts per minute per client, refused ones included.",
    )
    read_requests_per_minute: int = setting(
        "READ_REQUESTS_PER_MINUTE", "Read requests (API reads, dashboard polls) per minute."
    )
    max_concurrent_operations: int = setting(
        "MAX_CONCURRENT_OPERATIONS", "Operations allowed to run at once (slots)."
    )
    max_slots_per_client: int = setting(
        "MAX_SLOTS_PER_CLIENT",
        "Slots one client may hold at once (default: every slot in development and "
        "testing, half of them rounded up in staging and production).",
    )
    max_waiting_per_client: int = setting(
        "MAX_WAITING_PER_CLIENT", "Operations one client may have waiting in line for a slot."
    )
    max_waiting_operations: int = setting(
        "MAX_WAITING_OPERATIONS", "Operations that may wait in line for a slot, all clients."
    )
    cleanup_interval_seconds: int = setting(
        "CLEANUP_INTERVAL_SECONDS", "Seconds between sweeps of expired leases and old rows."
    )
    enable_rate_limiting: bool = setting(
        "ENABLE_RATE_LIMITING", "Whether starts and reads are rate limited."
    )
    allow_anonymous: bool = setting(
        "COORDHUB_ALLOW_ANONYMOUS", "Whether clients may use coordhub without signing in."
    )
    log_level: str = setting("LOG_LEVEL", "Level of coordhub's log output.")
    slot_lease_seconds: int = setting(
        "SLOT_LEASE_SECONDS", "Lease on a slot, renewed by the running worker."
    )
    operation_timeout_seconds: int = setting(
        "OPERATION_TIMEOUT_SECONDS", "Seconds an operation may run before it is failed."
    )
    operation_retention_days: int = setting(
        "OPERATION_RETENTION_DAYS", "Days finished operations are kept before pruning."
    )
    templates_wait_seconds: int = setting(
        "TEMPLATES_WAIT_SECONDS",
        "Seconds the templates' start endpoints wait for their operation to end before "
        "answering 202 instead of 200 (0 to 60; 0 answers 202 at once).",
    )
    poll_initial_interval_ms: int = setting(
        "POLL_INITIAL_INTERVAL_MS", "Dashboard poll interval after a change of state."
    )
    poll_max_interval_ms: int = setting("POLL_MAX_INTERVAL_MS", "Longest dashboard poll interval.")
    poll_multiplier: float = setting(
        "POLL_MULTIPLIER", "Growth of the poll interval after an unchanged poll."
    )
    poll_max_attempts: int = setting("POLL_MAX_ATTEMPTS", "Unchanged polls before polling pauses.")
    leader_heartbeat_ms: int = setting(
        "LEADER_HEARTBEAT_MS", "How often the leader tab renews its lease."
    )
    leader_timeout_ms: int = setting(
        "LEADER_TIMEOUT_MS", "Silence after which another tab takes the lead."
    )
    web_processes: int = setting(
        "WEB_CONCURRENCY", "Web server processes sharing the cache (1 in embedded mode)."
    )
    trusted_proxies: str = setting(
        "TRUSTED_PROXIES",
        "Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For "
        "is believed; empty means the client is REMOTE_ADDR.",
    )
    csrf_trusted_origins: str = setting(
        "CSRF_TRUSTED_ORIGINS",
        "Comma-separated origins (https://host) whose forms are accepted besides the host's own.",
    )
    secure_cookies: bool = setting(
        "SECURE_COOKIES", "Whether the session and CSRF cookies are sent over HTTPS only."
    )
    secure_ssl_redirect: bool = setting(
        "SECURE_SSL_REDIRECT", "Whether plain-HTTP requests are redirected to HTTPS."
    )
    hsts_seconds: int = setting(
        "HSTS_SECONDS", "Strict-Transport-Security max-age in seconds; 0 sends no header."
    )
    debug: bool = setting("DEBUG", "Django's DEBUG mode.")
    allowed_hosts: str = setting("ALLOWED_HOSTS", "Comma-separated host names served.")
    database_url: str = setting(
        "DATABASE_URL", "Database URL; unset means db.sqlite3 in the project.", secret=True
    )
    redis_url: str = setting(
        "REDIS_URL", "Redis URL for the shared cache; unset means local memory.", secret=True
    )

    config_file: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    @property
    def poll_ladder_ms(self) -> tuple[int, ...]:
        """The dashboard's poll intervals while nothing changes, from the first to the longest.

        The one definition of the backoff schedule: the dashboard renders it for the
        browser, which steps through it and stays on the last; `/api/performance`
        reports it for the load checker, which replays it.
        """
        ladder = [self.poll_initial_interval_ms]
        while len(ladder) < self.poll_max_attempts:
            step = min(self.poll_max_interval_ms, round(ladder[-1] * self.poll_multiplier))
            if step <= ladder[-1]:
                break
            ladder.append(step)
        return tuple(ladder)

    @property
    def trusted_origins(self) -> list[str]:
        """CSRF_TRUSTED_ORIGINS as a list (coordhub.E012 reports the items that are not origins)."""
        return [origin.strip() for origin in self.csrf_trusted_origins.split(",") if origin.strip()]

    def as_dict(self) -> dict[str, Any]:
        """Return the effective values, secrets masked."""
        return {spec.name: display_value(self, spec.name) for spec in setting_fields()}


@dataclass(frozen=True)
class Problem:
    """Something found while loading that `manage.py check` must report."""

    id: str
    msg: str
    hint: str = ""
    warning: bool = False


def setting_fields() -> list[Any]:
    """Return the dataclass fields that are configuration settings."""
    return [spec for spec in fields(Config) if "variable" in spec.metadata]


def display_value(config: Config, name: str) -> Any:
    """Return a value fit to print: secrets in URLs lose their password."""
    value = getattr(config, name)
    spec = next(spec for spec in setting_fields() if spec.name == name)
    if spec.metadata["secret"] and value:
        return mask_url_password(value)
    return value


def parse_networks(spec: str) -> tuple[tuple[IPNetwork, ...], list[str]]:
    """Split a comma-separated list of addresses and CIDR networks into networks and the rest.

    The one reading of TRUSTED_PROXIES: the client-address code trusts the networks,
    and the system check (coordhub.E009) reports every item that is neither.
    """
    networks, unparsable = [], []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            unparsable.append(item)
    return tuple(networks), unparsable


def mask_url_password(url: str) -> str:
    """Replace the password in `scheme://user:password@host` with asterisks."""
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not separator or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def resolve_profile(environ: Mapping[str, str]) -> tuple[str, list[Problem]]:
    """Pick the profile from the first variable set, falling back to development."""
    for variable in PROFILE_VARIABLES:
        raw = environ.get(variable, "").strip()
        if not raw:
            continue
        profile = raw.lower()
        if profile in PROFILES:
            return profile, []
        return DEFAULT_PROFILE, [
            Problem(
                "coordhub.W001",
                f"Unknown profile {raw!r} in {variable}; using {DEFAULT_PROFILE!r}.",
                hint=f"Set {variable} to one of: {', '.join(PROFILES)}.",
                warning=True,
            )
        ]
    return DEFAULT_PROFILE, []


def read_config_file(
    environ: Mapping[str, str], profile: str, base_dir: Path
) -> tuple[str | None, dict[str, Any], list[Problem]]:
    """Read the JSON file for `profile`, or the one `COORDHUB_CONFIG_FILE` names."""
    explicit = environ.get(CONFIG_FILE_VARIABLE, "").strip()
    path = Path(explicit) if explicit else base_dir / "config" / f"{profile}.json"
    if not path.is_absolute():
        path = base_dir / path
    if not path.exists():
        if not explicit:
            return None, {}, []
        return (
            str(path),
            {},
            [
                Problem(
                    "coordhub.E010",
                    f"{CONFIG_FILE_VARIABLE} names {str(path)!r}, which does not exist.",
                    hint=f"Create the file or unset {CONFIG_FILE_VARIABLE}.",
                )
            ],
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return (
            str(path),
            {},
            [
                Problem(
                    "coordhub.E010",
                    f"Configuration file {str(path)!r} could not be read: {exc}.",
                    hint="The file must hold one JSON object of setting names and values.",
                )
            ],
        )
    if not isinstance(data, dict):
        return (
            str(path),
            {},
            [
                Problem(
                    "coordhub.E010",
                    f"Configuration file {str(path)!r} holds a JSON {type(data).__name__}, "
                    "not an object.",
                    hint='Write it as {"requests_per_minute": 10, ...}.',
                )
            ],
        )
    known = {spec.name for spec in setting_fields()}
    problems = [
        Problem(
            "coordhub.W002",
            f"Configuration file {str(path)!r} has an unknown setting {key!r}; it is ignored.",
            hint=f"Known settings: {', '.join(sorted(known))}.",
            warning=True,
        )
        for key in data
        if key not in known
    ]
    return str(path), {key: value for key, value in data.items() if key in known}, problems


def load_config(environ: Mapping[str, str], base_dir: Path) -> Config:
    """Return the effective configuration for this environment."""
    profile, problems = resolve_profile(environ)
    config_file, file_values, file_problems = read_config_file(environ, profile, base_dir)
    problems += file_problems

    defaults = {**COMMON_DEFAULTS, **PROFILE_DEFAULTS[profile]}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in setting_fields():
        name, variable = spec.name, spec.metadata["variable"]
        values[name], sources[name] = defaults[name], f"default ({profile})"
        layers = [(file_values, name, f"file {config_file}"), (environ, variable, "environment")]
        for layer, key, source in layers:
            if key not in layer:
                continue
            raw = layer[key]
            try:
                values[name] = coerce(SETTING_TYPES[spec.type], raw)
            except ValueError as exc:
                problems.append(unparsable(name, variable, raw, source, exc))
                continue
            sources[name] = f"environment {variable}" if source == "environment" else source
        if name == "log_level":
            values[name] = normalise_log_level(values[name], problems)
    for name, value in values.items():
        if callable(value):  # a default worked out from the other values
            values[name] = value(values)

    return Config(
        profile=profile,
        config_file=config_file,
        sources=sources,
        problems=tuple(problems),
        **values,
    )


def unparsable(name: str, variable: str, raw: Any, source: str, exc: Exception) -> Problem:
    """Describe a value that could not be parsed."""
    where = f"{variable}" if source == "environment" else f"{name!r} in {source}"
    return Problem(
        "coordhub.E001",
        f"{where} has the value {raw!r}, which cannot be used ({exc}); "
        "the lower-precedence value stays in force.",
        hint=f"Set {variable} (or {name!r} in the JSON file) to a valid value.",
    )


def normalise_log_level(level: str, problems: list[Problem]) -> str:
    """Upper-case the log level, reporting one Python's logging does not know."""
    upper = level.upper()
    if upper in LOG_LEVELS and isinstance(logging.getLevelName(upper), int):
        return upper
    problems.append(
        Problem(
            "coordhub.E001",
            f"LOG_LEVEL has the value {level!r}, which is not a log level.",
            hint=f"Use one of: {', '.join(LOG_LEVELS)}.",
        )
    )
    return "INFO"
