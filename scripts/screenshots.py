"""Take the screenshots of coordhub's main views that the README and docs/ show.

Starts a throwaway coordhub as the end-to-end tests do (`manage.py serve`:
daphne and a worker, on a SQLite file of its own), creates a user and an API
key, starts a realistic mix of operations through the HTTP API (some completed,
some failed, one still running), then signs in with Debian's Chromium and saves
the dashboard, a failed operation's page and the admin's operations list, each
in light and dark at 1280 by 800 px and on a 360 px wide phone (the whole page,
up to 2000 px). The server is stopped at the end, whatever happens.

    make screenshots                                  # into docs/screenshots/
    .venv/bin/python scripts/screenshots.py --output /tmp/shots

It needs the test install (Playwright) and Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

from coordhub.testing.processes import manage  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.live import LiveServer  # noqa: E402

DEFAULT_OUTPUT = ROOT / "docs" / "screenshots"
USERNAME, PASSWORD = "admin", "screenshots-password-4181"
# The testing profile allows 5 starts a minute; the mix below needs a few more.
SERVER_SETTINGS = {"COORDHUB_ENV": "testing", "REQUESTS_PER_MINUTE": "30"}
FINISHED = {"completed", "failed", "cancelled"}
WAIT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 2.0
# Time for the live region's first poll and the tabs' election after the network calms.
SETTLE_MS = 1000
# Time for the page to lay itself out again in a taller viewport.
RESIZE_MS = 300
PHONE_MAX_HEIGHT = 2000

# Short operations, each waited for before the next starts: the pool has 3 slots.
SHORT_OPERATIONS: list[dict[str, Any]] = [
    {"duration": 0.6, "data": {"report": "quarterly-usage", "region": "eu-west"}},
    {"duration": 0.4},
    {"duration": 0.8, "data": {"batch": 17, "items": 250}},
    {"duration": 0.5, "fail": True, "data": {"report": "invoices", "region": "us-east"}},
    {"duration": 0.3},
    {"duration": 1.0, "data": {"model": "forecast-v2"}},
    {"duration": 0.7, "fail": True},
]
LONG_OPERATION: dict[str, Any] = {"duration": 120, "data": {"job": "nightly-reindex"}}


@dataclass(frozen=True)
class Look:
    """How a shot is taken: its name's suffix, the viewport and the colour scheme."""

    name: str
    width: int
    height: int
    color_scheme: str = "light"
    whole_page: bool = False


LOOKS = [
    Look("light", 1280, 800),
    Look("dark", 1280, 800, color_scheme="dark"),
    Look("phone", 360, 740, whole_page=True),
]


def main(argv: list[str] | None = None) -> int:
    """Start a coordhub, fill it with operations, save every shot into --output."""
    options = parse_arguments(argv)
    output = options.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="coordhub-screenshots-") as directory:
        server = LiveServer(Path(directory), **SERVER_SETTINGS)
        try:
            server.start()
            key = create_user(server)
            failed_id = start_operations(server.url, key)
            written = take_screenshots(server.url, failed_id, output)
        finally:
            # Nothing to keep: don't wait out the worker's grace for the long operation.
            server.stop(timeout=STOP_TIMEOUT_SECONDS)
    for path in written:
        print(f"wrote {display(path)}")
    print(f"{len(written)} screenshots in {time.monotonic() - started:.0f} s")
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"Folder to write the PNGs into (default: {display(DEFAULT_OUTPUT)}).",
    )
    return parser.parse_args(argv)


def create_user(server: LiveServer) -> str:
    """Create the superuser the shots sign in as; return an API key of theirs."""
    manage(
        "createsuperuser",
        "--no-input",
        "--username",
        USERNAME,
        "--email",
        "admin@example.com",
        env=server.env | {"DJANGO_SUPERUSER_PASSWORD": PASSWORD},
    )
    return manage("coordhub_apikey", USERNAME, "--name", "screenshots", env=server.env).strip()


def start_operations(url: str, key: str) -> str:
    """Start the long operation, then each short one until it ends; return a failed one's id."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        start(client, LONG_OPERATION)
        ended = [wait_until_finished(client, start(client, params)) for params in SHORT_OPERATIONS]
    return next(operation["id"] for operation in ended if operation["status"] == "failed")


def start(client: httpx.Client, params: dict[str, Any]) -> str:
    """Start a `simulated` operation with `params`; return its id."""
    response = client.post("/api/operations", json={"kind": "simulated", "params": params})
    if response.status_code != 202:
        raise RuntimeError(f"Starting {params} answered {response.status_code}: {response.text}")
    return response.json()["id"]


def wait_until_finished(client: httpx.Client, operation_id: str) -> dict[str, Any]:
    """Poll the operation until it has ended; return it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        operation = client.get(f"/api/operations/{operation_id}").raise_for_status().json()
        if operation["status"] in FINISHED:
            return operation
        time.sleep(0.25)
    raise RuntimeError(f"Operation {operation_id} did not end within {WAIT_SECONDS:.0f} s.")


def take_screenshots(url: str, failed_id: str, output: Path) -> list[Path]:
    """Save every view in every look into `output`; return the files written."""
    views = {
        "dashboard": "/",
        "operation": f"/operations/{failed_id}/",
        "admin": "/admin/operations/operation/",
    }
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for look in LOOKS:
                page = signed_in_page(browser, url, look)
                for view, path in views.items():
                    target = output / f"{view}-{look.name}.png"
                    written.append(shoot(page, f"{url}{path}", target, whole_page=look.whole_page))
                page.context.close()
        finally:
            browser.close()
    return written


def signed_in_page(browser: Browser, url: str, look: Look) -> Page:
    """A page in a fresh browser context for `look`, signed in as the screenshots' user."""
    context = browser.new_context(
        viewport={"width": look.width, "height": look.height},
        color_scheme=look.color_scheme,
        device_scale_factor=1,
    )
    page = context.new_page()
    # Landing on the admin, not the dashboard: a dashboard left behind would count as
    # another open tab in the dashboard's footer until its heartbeat expires.
    page.goto(f"{url}/accounts/login/?next=/admin/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/admin/")
    return page


def shoot(page: Page, url: str, path: Path, *, whole_page: bool) -> Path:
    """Open `url`, wait for the network to calm and the page to settle, save a PNG at `path`."""
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(SETTLE_MS)
    if not whole_page:
        page.screenshot(path=path)
        return path
    # A viewport as tall as the page (up to PHONE_MAX_HEIGHT) rather than full_page=True,
    # which leaves the fixed footer where the phone's screen ends, over the content.
    viewport = page.viewport_size or {"width": 0, "height": 0}
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": min(height, PHONE_MAX_HEIGHT)})
    page.wait_for_timeout(RESIZE_MS)
    page.screenshot(path=path)
    page.set_viewport_size(viewport)
    return path


def display(path: Path) -> str:
    """`path` relative to the project when it lies inside it, else as it is."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
