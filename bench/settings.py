"""coordhub's settings plus the benchmark-only URLs (`bench.urls`); for benchmark servers only."""

from coordhub.settings import *  # noqa: F403 (the very settings coordhub runs with)

ROOT_URLCONF = "bench.urls"
