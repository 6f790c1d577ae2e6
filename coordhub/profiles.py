"""The defaults of each configuration profile, the lowest layer of the configuration.

A JSON file (`COORDHUB_CONFIG_FILE`) and then the environment override them;
`coordhub/config.py` loads the three layers. A default may be worked out from the
values of the others (a client's share of the slots from the slot count). The
README's configuration table mirrors these values.
"""

from __future__ import annotations

import math
from typing import Any


def every_slot(values: dict[str, Any]) -> int:
    return values["max_concurrent_operations"]


def half_the_slots(values: dict[str, Any]) -> int:
    return math.ceil(values["max_concurrent_operations"] / 2)


PROFILES = ("development", "testing", "staging", "production")
DEFAULT_PROFILE = "development"

COMMON_DEFAULTS: dict[str, Any] = {
    "start_attempts_per_minute": 60,
    "max_waiting_per_client": 100,
    "max_waiting_operations": 1000,
    "read_requests_per_minute": 120,
    "slot_lease_seconds": 30,
    "operation_timeout_seconds": 7200,
    "operation_retention_days": 30,
    "templates_wait_seconds": 10,
    "poll_initial_interval_ms": 5000,
    "poll_max_interval_ms": 30000,
    "poll_multiplier": 1.2,
    "poll_max_attempts": 100,
    "leader_heartbeat_ms": 3000,
    "leader_timeout_ms": 10000,
    "web_processes": 1,
    "allowed_hosts": "localhost,127.0.0.1,[::1]",
    "trusted_proxies": "",
    "csrf_trusted_origins": "",
    "database_url": "",
    "redis_url": "",
}

# HTTPS (secure cookies, the redirect, HSTS) is on only in staging and production:
# the tests and `make run` speak plain HTTP on loopback.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "development": {
        "requests_per_minute": 10,
        "max_concurrent_operations": 5,
        "max_slots_per_client": every_slot,
        "cleanup_interval_seconds": 1800,
        "enable_rate_limiting": False,
        "allow_anonymous": True,
        "log_level": "DEBUG",
        "debug": True,
        "secure_cookies": False,
        "secure_ssl_redirect": False,
        "hsts_seconds": 0,
    },
    "testing": {
        "requests_per_minute": 5,
        "max_concurrent_operations": 3,
        "max_slots_per_client": every_slot,
        "cleanup_interval_seconds": 900,
        "enable_rate_limiting": True,
        "allow_anonymous": True,
        "log_level": "DEBUG",
        "debug": False,
        "secure_cookies": False,
        "secure_ssl_redirect": False,
        "hsts_seconds": 0,
    },
    "staging": {
        "requests_per_minute": 3,
        "max_concurrent_operations": 2,
        "max_slots_per_client": half_the_slots,
        "cleanup_interval_seconds": 3600,
        "enable_rate_limiting": True,
        "allow_anonymous": False,
        "log_level": "INFO",
        "debug": False,
        "secure_cookies": True,
        "secure_ssl_redirect": True,
        "hsts_seconds": 31536000,
    },
    "production": {
        "requests_per_minute": 2,
        "max_concurrent_operations": 2,
        "max_slots_per_client": half_the_slots,
        "cleanup_interval_seconds": 3600,
        "enable_rate_limiting": True,
        "allow_anonymous": False,
        "log_level": "WARNING",
        "debug": False,
        "secure_cookies": True,
        "secure_ssl_redirect": True,
        "hsts_seconds": 31536000,
    },
}
