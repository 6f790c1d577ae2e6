from __future__ import annotations

import pytest

from operations.kinds import get_kind, known_kinds
from operations.kinds.simulated import SimulatedFailure, result_as_shown


class RecordingContext:
    """Stands in for OperationContext: records what the kind reports, never sleeps."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, str]] = []

    def sleep(self, seconds: float) -> None:
        pass

    def progress(self, percent: float, message: str = "") -> None:
        self.reports.append((percent, message))


def test_simulated_is_registered_with_defaults():
    kind = get_kind("simulated")

    assert "simulated" in known_kinds()
    assert kind.validate({}) == {"fail": False}
    assert kind.validate({"duration": 3, "data": {"a": [1]}}) == {
        "duration": 3.0,
        "fail": False,
        "data": {"a": [1]},
    }


def test_simulated_reports_progress_up_to_100_and_echoes_its_data():
    context = RecordingContext()

    result = get_kind("simulated").function(context, duration=0.3, data={"job": 7})

    assert result == {"duration": 0.3}  # the data is shown back from the params, not stored
    assert context.reports == [(33, "step 1 of 3"), (66, "step 2 of 3"), (100, "step 3 of 3")]


def test_simulated_fails_at_the_end_when_asked():
    context = RecordingContext()

    with pytest.raises(SimulatedFailure, match="as requested by the 'fail' parameter"):
        get_kind("simulated").function(context, duration=0.1, fail=True)

    assert context.reports[-1][0] == 100


@pytest.mark.parametrize(
    ("params", "stored", "shown"),
    [
        (
            {"duration": 2, "data": {"job": 7}},
            {"duration": 2},
            {"duration": 2, "processed_data": {"job": 7}},
        ),
        ({"duration": 2}, {"duration": 2}, {"duration": 2, "processed_data": {}}),
        (
            {"data": {"job": 7}},
            {"duration": 2.0, "processed_data": {"job": 7}},
            {"duration": 2.0, "processed_data": {"job": 7}},
        ),
        ({"data": {"job": 7}}, None, None),
    ],
    ids=["data-from-params", "no-data", "stored-before", "no-result"],
)
def test_a_result_is_shown_with_its_data_from_the_params(params, stored, shown):
    assert result_as_shown(params, stored) == shown
