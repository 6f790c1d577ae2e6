from __future__ import annotations

import pytest

from operations.exceptions import InvalidParams
from operations.kinds import get_kind


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"duration": "5"}, "duration", "Must be a number, not a string."),
        ({"duration": True}, "duration", "not true or false"),
        ({"duration": 0}, "duration", "greater than or equal to 0.001"),
        ({"duration": -1}, "duration", "greater than or equal to 0.001"),
        ({"duration": 3601}, "duration", "less than or equal to 3600"),
        ({"fail": "yes"}, "fail", "Must be true or false"),
        ({"data": [1, 2]}, "data", "Must be a JSON object."),
        ({"speed": 1}, "speed", "Is not a parameter of this kind."),
    ],
)
def test_bad_params_are_explained_per_field(params, field, fragment):
    with pytest.raises(InvalidParams) as raised:
        get_kind("simulated").validate(params)

    assert fragment in " ".join(raised.value.errors[field])
    assert field in str(raised.value)
