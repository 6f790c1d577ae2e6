"""Dashboard polls in ten quiet minutes: leader election with backoff vs every tab on a fixed 2 s.

Computed, not measured: the ladder is the configured default's `poll_ladder_ms`
(the ladder `coordhub-loadcheck` replays), and with leader election only one tab polls, so
the count does not grow with the tabs.
"""

from __future__ import annotations

from bench.table import Row, at_most
from coordhub.config import Config
from coordhub.profiles import COMMON_DEFAULTS, DEFAULT_PROFILE, PROFILE_DEFAULTS
from loadcheck.polling import (
    FIXED_POLL_SECONDS,
    POLL_HORIZON_SECONDS,
    REQUIRED_POLL_SAVING,
    backoff_polls,
    fixed_polls,
)

TABS = (1, 5, 20)


def ladder() -> tuple[int, int, float, int]:
    return (
        COMMON_DEFAULTS["poll_initial_interval_ms"],
        COMMON_DEFAULTS["poll_max_interval_ms"],
        COMMON_DEFAULTS["poll_multiplier"],
        COMMON_DEFAULTS["poll_max_attempts"],
    )


def describe_ladder() -> str:
    initial, longest, multiplier, attempts = ladder()
    return f"{initial} ms x{multiplier} to {longest} ms, max {attempts} attempts, no change"


def rows() -> list[Row]:
    defaults = Config(**COMMON_DEFAULTS, **PROFILE_DEFAULTS[DEFAULT_PROFILE])
    leader = backoff_polls(defaults.poll_ladder_ms, defaults.poll_max_attempts)
    minutes = POLL_HORIZON_SECONDS // 60
    return [
        Row(
            f"6. polls per {minutes} min, {tabs} tab{'s' if tabs > 1 else ''} (computed)",
            f"{leader} (leader only)",
            f"{tabs * fixed_polls()} (each tab every {FIXED_POLL_SECONDS} s)",
            leader / (tabs * fixed_polls()),
            at_most(1 - REQUIRED_POLL_SAVING),
        )
        for tabs in TABS
    ]
