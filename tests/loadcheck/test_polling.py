"""The polling check: the reported ladder replayed, and the fragment's 204s measured."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadcheck.client import connect
from loadcheck.polling import (
    CONTENT_HEADER,
    STATE_HEADER,
    backoff_polls,
    check_polling,
    fixed_polls,
    measure_fragment,
    replay_ladder,
)
from loadcheck.report import CheckFailed
from tests.live import LiveServer
from tests.loadcheck.fakes import DEFAULT_POLLING, fake_deployment, limits, quiet_fragment

WINDOW = 0.05  # seconds: long enough for a few polls of an in-process fake
GAP = 0.005


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory: Path = tmp_path_factory.mktemp("polling")
    started = LiveServer(directory, COORDHUB_ENV="testing").start()
    yield started
    started.stop()


def test_the_default_ladder_polls_less_than_half_as_often_as_every_two_seconds():
    backoff = backoff_polls(DEFAULT_POLLING["ladder_ms"], 100, horizon_seconds=600)

    assert fixed_polls(2, horizon_seconds=600) == 300
    assert backoff == 25  # 5, 6, 7.2, ... 25.8 s (10 polls in 130 s), then 15 of 30 s
    assert backoff < 300 / 2


def test_the_ladder_stops_after_max_attempts():
    assert backoff_polls([1000], 10, horizon_seconds=600) == 10


def test_the_ladder_stays_on_its_last_interval_without_a_pause():
    assert backoff_polls([1000, 2000], None, horizon_seconds=11) == 6  # 1, then 5 of 2 s


def test_polling_check_fails_a_ladder_that_saves_too_little():
    ladder = {"ladder_ms": [2000, 2200, 2420, 2662, 2928, 3000], "max_attempts": 1000}

    with pytest.raises(CheckFailed) as failed:
        check_polling(fake_deployment(), limits(polling=ladder), WINDOW)

    assert "vs 300 at a fixed 2 s" in str(failed.value)
    assert "at least 50% fewer needed" in str(failed.value)
    assert failed.value.result["measured"]["answered_200"]["count"] == 0


def test_replay_fails_clearly_when_the_deployment_reports_no_ladder():
    without_ladder = {key: value for key, value in DEFAULT_POLLING.items() if key != "ladder_ms"}

    with pytest.raises(CheckFailed) as failed:
        replay_ladder(without_ladder)

    assert str(failed.value) == (
        "cannot replay the backoff: GET /api/performance reported no polling.ladder_ms "
        "(a list of intervals in ms), got None"
    )


def test_replay_uses_the_reported_ladder_not_the_settings_it_came_from():
    reported = DEFAULT_POLLING | {"ladder_ms": [60000]}

    outcome = replay_ladder(reported)

    assert outcome.result["backoff_polls"] == 10
    assert outcome.summary == (
        "10 polls with backoff vs 300 at a fixed 2 s over 10 simulated minutes, 97% fewer"
    )


def test_polling_check_passes_when_unchanged_polls_are_answered_204():
    outcome = check_polling(fake_deployment(), limits(polling=DEFAULT_POLLING), WINDOW)

    measured = outcome.result["measured"]
    assert measured["polls"] >= 1
    assert measured["answered_204"] == {
        "count": measured["polls"],
        "bytes": 0,
        "p50_seconds": measured["answered_204"]["p50_seconds"],
        "max_seconds": measured["answered_204"]["max_seconds"],
    }
    assert measured["first"]["bytes"] == len("<section>live</section>")
    assert "25 polls with backoff vs 300" in outcome.summary
    assert "conditional GETs of /dashboard/live/" in outcome.summary


def test_measurement_fails_when_unchanged_polls_are_answered_200():
    def always_full(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, text="<p>x</p>", headers={CONTENT_HEADER: "v1", STATE_HEADER: "s"}
        )

    with pytest.raises(CheckFailed) as failed:
        measure_fragment(fake_deployment(fragment=always_full), WINDOW, GAP)

    polls = failed.value.result["polls"]
    assert f"; {polls} unchanged poll(s) answered 200 with the content" in str(failed.value)
    assert failed.value.result["unchanged_answered_200"] == polls


def test_measurement_follows_a_change_and_expects_204_for_the_new_version():
    versions = itertools.count(1)

    def changes_once(request: httpx.Request) -> httpx.Response:
        shown = request.headers.get(CONTENT_HEADER)
        if shown == "v2":
            return httpx.Response(204, headers={CONTENT_HEADER: "v2", STATE_HEADER: "s"})
        version = f"v{min(next(versions), 2)}"
        return httpx.Response(
            200, text="<p/>", headers={CONTENT_HEADER: version, STATE_HEADER: "s"}
        )

    outcome = measure_fragment(fake_deployment(fragment=changes_once), WINDOW, GAP)

    assert outcome.result["changed"] == 1
    assert outcome.result["answered_204"]["count"] == outcome.result["polls"] - 1


def test_measurement_fails_when_the_fragment_carries_no_versions():
    def unversioned(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<p/>")

    with pytest.raises(CheckFailed) as failed:
        measure_fragment(fake_deployment(fragment=unversioned), WINDOW, GAP)

    assert str(failed.value) == (
        "GET /dashboard/live/ answered 200 without X-Coordhub-Content and X-Coordhub-State, "
        "so no poll can be conditional"
    )


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            httpx.Response(401, json={"error": "authentication_required", "detail": "Sign in."}),
            "GET /dashboard/live/ answered 401 authentication_required: Sign in; "
            "the dashboard is closed to this client: pass --api-key",
        ),
        (
            httpx.Response(302, headers={"Location": "/accounts/login/"}),
            "GET /dashboard/live/ answered 302 to /accounts/login/; "
            "the dashboard is closed to this client: pass --api-key",
        ),
    ],
)
def test_measurement_says_when_the_dashboard_is_closed_to_the_client(answer, said):
    with pytest.raises(CheckFailed) as failed:
        measure_fragment(fake_deployment(fragment=lambda request: answer), WINDOW, GAP)

    assert str(failed.value) == said


def test_measurement_counts_the_polls_the_read_limit_refused():
    def limited_after_first(request: httpx.Request) -> httpx.Response:
        if request.headers.get(CONTENT_HEADER):
            return httpx.Response(429, json={"error": "rate_limited", "detail": "Too many."})
        return quiet_fragment(request)

    with pytest.raises(CheckFailed) as failed:
        measure_fragment(fake_deployment(fragment=limited_after_first), WINDOW, GAP)

    polls = failed.value.result["polls"]
    assert str(failed.value).endswith(
        f"; unexpected answers: 429 rate_limited: Too many ({polls} times)"
    )


def test_measurement_names_a_refused_key_without_asking_for_one():
    refused = httpx.Response(401, json={"error": "invalid_api_key", "detail": "Unknown key."})
    client = fake_deployment(fragment=lambda request: refused)
    client.headers["Authorization"] = "Bearer wrong"

    with pytest.raises(CheckFailed) as failed:
        measure_fragment(client, WINDOW, GAP)

    assert str(failed.value) == "GET /dashboard/live/ answered 401 invalid_api_key: Unknown key"


def test_measurement_against_a_live_server_sees_real_204s(server):
    with connect(server.url) as client:
        outcome = measure_fragment(client, window_seconds=1.5)

    result = outcome.result
    assert result["polls"] >= 3
    assert result["answered_204"]["count"] == result["polls"]  # nothing changes on a fresh server
    assert result["answered_204"]["bytes"] == 0
    assert result["unchanged_answered_200"] == 0
    assert result["without_version_headers"] == 0
    assert result["first"]["bytes"] > 0
