"""A real coordhub (daphne and a worker, `manage.py serve`) and Debian's Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from coordhub.testing.processes import manage
from tests.live import LiveServer

CHROMIUM = os.environ.get("COORDHUB_CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium phones home at start and the closed network refuses it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def coordhub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("live"), COORDHUB_ENV="testing").start()
    yield server
    server.stop()


# Per module: Playwright's sync API runs an event loop in the main thread while it is
# open, and the tests after the browser's modules call asyncio.run() there.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (Debian package chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def api_headers(coordhub_server: LiveServer) -> dict[str, str]:
    """Headers of an API key of its own, for tests that start operations to look at them.

    Its starts spend that key's user's budget, not the one the browser shares with
    every anonymous request from this machine, which other tests count on.
    """
    manage(
        "createsuperuser",
        "--no-input",
        "--username",
        "e2e-api",
        "--email",
        "e@example.com",
        env=coordhub_server.env | {"DJANGO_SUPERUSER_PASSWORD": "e2e-api-password-5521"},
    )
    secret = manage("coordhub_apikey", "e2e-api", "--name", "e2e", env=coordhub_server.env)
    return {"Authorization": f"Bearer {secret.strip()}"}
