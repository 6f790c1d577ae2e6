from __future__ import annotations

import pytest

from operations.exceptions import InvalidParams, UnknownKind
from operations.kinds import get_kind, known_kinds


def test_simulated_is_registered_with_defaults():
    kind = get_kind("simulated")

    assert "simulated" in known_kinds()
    assert kind.validate({}) == {"fail": False}
    assert kind.validate({"duration": 3, "data": {"a": [1]}}) == {
        "duration": 3.0,
        "fail": False,
        "data": {"a": [1]},
    }


@pytest.mark.parametrize("name", ["nope", "", None, 3, ["simulated"]])
def test_unknown_kind_names_the_known_ones(name):
    with pytest.raises(UnknownKind) as raised:
        get_kind(name)

    assert "known kinds: simulated" in str(raised.value)
    assert raised.value.code == "unknown_kind"


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


@pytest.mark.parametrize("params", [[], "duration=1", 5, None])
def test_params_must_be_an_object(params):
    with pytest.raises(InvalidParams) as raised:
        get_kind("simulated").validate(params)

    assert raised.value.errors == {"params": ["Must be a JSON object."]}
