"""The concurrency and rate-limit checks against fake deployments."""

from __future__ import annotations

import pytest

from loadcheck.admission import check_concurrency, check_rate_limiting
from loadcheck.report import CheckFailed
from loadcheck.starts import Starts
from tests.loadcheck.fakes import admit_first, fake_deployment, limits


def test_rate_limit_check_fails_when_every_start_is_admitted_despite_the_report():
    client = fake_deployment(answer=lambda number: "admit")

    with pytest.raises(CheckFailed) as failed:
        check_rate_limiting(Starts(client), limits())

    assert str(failed.value).startswith("6 of 6 starts admitted")
    assert "more than the limit of 5 per minute admitted" in str(failed.value)
    assert "no 429 rate_limited after 6 starts" in str(failed.value)


def test_rate_limit_check_sends_nothing_when_rate_limiting_is_reported_off():
    client = fake_deployment(answer=lambda number: pytest.fail("started an operation"))

    with pytest.raises(CheckFailed) as failed:
        check_rate_limiting(Starts(client), limits(rate_limiting_enabled=False))

    assert str(failed.value) == (
        "rate limiting is off: GET /api/performance reports enabled false; no starts sent"
    )


def test_concurrency_check_fails_when_more_than_the_slots_are_admitted():
    client = fake_deployment(answer=admit_first(4))

    with pytest.raises(CheckFailed) as failed:
        check_concurrency(Starts(client), limits(), print)

    assert "4 admitted, more than the 3 slots" in str(failed.value)


def test_concurrency_check_passes_when_the_rest_are_refused_for_want_of_a_slot():
    client = fake_deployment(answer=admit_first(3))
    starts = Starts(client)

    outcome = check_concurrency(starts, limits(), print)

    assert outcome.summary.startswith("3 of 5 parallel 5 s starts admitted for 3 slots")
    assert outcome.result["concurrency_limit"] == 2
    assert starts.cancel_all()["cancelled"] == 3


def test_concurrency_check_waits_for_a_fresh_window_when_the_budget_was_spent():
    client = fake_deployment(answer=admit_first(3, after=5))
    notes = []

    outcome = check_concurrency(Starts(client), limits(), notes.append)

    assert "waiting 1 s for a fresh window" in notes[0]
    assert outcome.result["admitted"] == 3
    assert outcome.result["rate_limited"] == 0
