"""scripts/screenshots.py, run as `make screenshots` runs it, into a temporary folder.

The script starts a coordhub of its own rather than borrowing the session's: its
starts need more than the testing profile's five a minute, and its pictures must
not show other tests' operations. That costs a server's start, about 15 s.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from coordhub.testing.environment import without_configuration
from tests.live import ROOT

VIEWS = ("dashboard", "operation", "admin")
LOOKS = ("light", "dark", "phone")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT_SECONDS = 240


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The folder the script wrote into, and what it printed."""
    output = tmp_path_factory.mktemp("screenshots")
    finished = subprocess.run(
        [sys.executable, "scripts/screenshots.py", "--output", str(output)],
        cwd=ROOT,
        env=without_configuration(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return output, finished.stdout


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; fail if the file is no PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path.name} does not begin with its IHDR chunk"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_the_script_writes_and_names_every_view_in_every_look(screenshots):
    output, printed = screenshots

    expected = sorted(f"{view}-{look}.png" for view in VIEWS for look in LOOKS)
    assert sorted(path.name for path in output.iterdir()) == expected
    assert [line for line in printed.splitlines() if line.startswith("wrote ")] == [
        f"wrote {output / f'{view}-{look}.png'}" for look in LOOKS for view in VIEWS
    ]


@pytest.mark.parametrize("view", VIEWS)
def test_desktop_shots_are_1280_by_800_and_the_phone_shot_360_wide_up_to_2000_high(
    screenshots, view
):
    output, _ = screenshots

    assert png_size(output / f"{view}-light.png") == (1280, 800)
    assert png_size(output / f"{view}-dark.png") == (1280, 800)
    width, height = png_size(output / f"{view}-phone.png")
    assert width == 360
    assert 740 <= height <= 2000


@pytest.mark.parametrize("view", VIEWS)
def test_light_and_dark_of_a_view_differ(screenshots, view):
    output, _ = screenshots

    light, dark = (output / f"{view}-light.png", output / f"{view}-dark.png")
    assert light.read_bytes() != dark.read_bytes()
