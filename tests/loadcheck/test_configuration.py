"""The configuration check and the limits it hands to the others."""

from __future__ import annotations

import pytest

from loadcheck.configuration import check_configuration, limits_from
from loadcheck.report import CheckFailed
from tests.loadcheck.fakes import DEFAULT_POLLING, fake_deployment


def test_configuration_reports_the_limits_and_the_polling_ladder():
    outcome = check_configuration(fake_deployment(), None, None)

    assert outcome.summary == "testing profile: 5 starts/min, 3 slots, health healthy"
    assert limits_from(outcome.result, None, None).polling == DEFAULT_POLLING


def test_configuration_fails_when_the_reported_limits_are_not_the_expected():
    with pytest.raises(CheckFailed) as failed:
        check_configuration(fake_deployment(enabled=False), 10, 4)

    assert str(failed.value) == (
        "5 starts per minute reported, 10 expected; "
        "rate limiting is off, 10 starts per minute expected; 3 slots reported, 4 expected"
    )


def test_expected_limits_win_over_the_reported():
    outcome = check_configuration(fake_deployment(), None, None)

    chosen = limits_from(outcome.result, 7, 2)

    assert (chosen.requests_per_minute, chosen.slots) == (7, 2)
