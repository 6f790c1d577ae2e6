"""Response times, and the percentile every check reports."""

from __future__ import annotations

import pytest

from loadcheck.report import CheckFailed
from loadcheck.timing import check_response_times, percentile
from tests.loadcheck.fakes import fake_deployment


def test_percentile_is_nearest_rank():
    values = [float(n) for n in range(1, 101)]

    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([0.3], 95) == 0.3


def test_response_times_fail_when_the_average_is_too_slow():
    with pytest.raises(CheckFailed) as failed:
        check_response_times(fake_deployment(), requests=3, max_average=0.0)

    assert str(failed.value).startswith("3 GETs of /api/health: average ")
    assert str(failed.value).endswith("0% errors; the average is above 0 s")
