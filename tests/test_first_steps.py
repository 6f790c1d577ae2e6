"""The README's first steps, run as written against a live coordhub.

`make run` is the live server here; the commands of the second block run in a
shell on a terminal (createsuperuser asks for its password twice), against the
server's database and URL. Then the new user signs in at /accounts/login/.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.live import ROOT, LiveServer

README_URL = "http://127.0.0.1:8000"
PASSWORD = "first-steps-7c41-coordhub"
PROMPTS = (b"Password: ", b"Password (again): ")
TIMEOUT_SECONDS = 60


def first_steps_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## First steps", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("first-steps")).start()
    yield live
    live.stop()


def run_on_a_terminal(script: str, env: dict[str, str]) -> str:
    """Run `script` in bash on a pseudo-terminal, answering password prompts; return its output."""
    controller, terminal = pty.openpty()
    shell = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    os.close(terminal)
    output, deadline = b"", time.monotonic() + TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the shell and everything it started have exited
                    break
                output += chunk
                if output.endswith(PROMPTS):
                    os.write(controller, PASSWORD.encode() + b"\n")
            elif shell.poll() is not None:
                break
    finally:
        os.close(controller)
        shell.kill() if shell.poll() is None else None
    assert shell.wait(timeout=10) == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


def test_the_readme_has_the_two_blocks_of_first_steps():
    start, steps = first_steps_blocks()

    assert start.strip() == "make run"
    assert "manage.py createsuperuser" in steps
    assert "manage.py coordhub_apikey" in steps


def test_the_first_steps_create_a_user_who_signs_in_and_a_key_that_starts_an_operation(server):
    _, steps = first_steps_blocks()

    output = run_on_a_terminal(steps.replace(README_URL, server.url), server.env)

    answers = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(answers) == 2, output
    started, listed = answers
    assert started["kind"] == "simulated"
    assert started["status"] in ("queued", "running")
    assert started["details_visible"] is True
    assert started["id"] in [row["id"] for row in listed["operations"]]
    assert_signs_in(server, "admin", PASSWORD)


def assert_signs_in(server: LiveServer, username: str, password: str) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        form = browser.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        signed_in = browser.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{server.url}/accounts/login/"},
        )
        dashboard = browser.get("/")

    assert signed_in.status_code == 302
    assert dashboard.status_code == 200
    assert username in dashboard.text
