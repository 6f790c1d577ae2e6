"""The load checker is a tool beside the service: it imports nothing of it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.live import ROOT

SERVICE_PACKAGES = ("coordhub", "operations", "api", "monitoring", "dashboard", "django")

LIST_LOADED = """
import json, sys
import loadcheck.cli
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_loadcheck_imports_nothing_from_the_service_or_django():
    finished = subprocess.run(
        [sys.executable, "-c", LIST_LOADED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    loaded = set(json.loads(finished.stdout))
    assert "loadcheck" in loaded
    assert "httpx" in loaded
    assert loaded.isdisjoint(SERVICE_PACKAGES), sorted(loaded & set(SERVICE_PACKAGES))
