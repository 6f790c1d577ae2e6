"""`manage.py serve` (what `make run` runs) as a user sees it."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from tests.live import LiveServer


@pytest.fixture
def server(tmp_path):
    server = LiveServer(tmp_path).start()
    yield server
    if server.process.poll() is None:
        server.stop()


def test_serve_answers_health_with_200(server):
    response = httpx.get(server.url + "/api/health")

    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_ctrl_c_stops_web_server_and_worker_cleanly(server):
    started = server.children()
    assert len(started) == 2

    server.process.send_signal(signal.SIGINT)

    assert server.process.wait(timeout=30) == 0
    assert not any(os.path.exists(f"/proc/{pid}") for pid, _ in started)
    assert "coordhub stopped." in server.log.read_text()


def test_a_dead_worker_stops_the_web_server_and_fails(server):
    worker = next(pid for pid, command in server.children() if "coordhub_worker" in command)

    os.kill(worker, signal.SIGKILL)

    assert server.process.wait(timeout=30) != 0
    assert "The worker exited with code -9" in server.log.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/api/health", timeout=1)
