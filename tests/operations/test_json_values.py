"""Strict JSON: what both databases can store, and a sentence for what they cannot."""

from __future__ import annotations

import json

import pytest

from operations.json_values import MAX_DEPTH, StrictJSONDecoder


def loads(text: str):
    return json.loads(text, cls=StrictJSONDecoder)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_ordinary_json_reads_as_python_would():
    text = '{"a": [1, -2.5, "é", true, null, {"b": 9223372036854775807}]}'

    assert loads(text) == json.loads(text)
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"x": NaN}', "NaN is not a JSON number"),
        ("[Infinity]", "Infinity is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ("[1e400]", "1e400 is too large a number to store"),
        ("[9223372036854775808]", "integers must lie within"),
        ("[" + "9" * 5000 + "]", "integers must lie within"),
        (nested(MAX_DEPTH + 1), f"it nests deeper than {MAX_DEPTH} levels"),
        (nested(30_000), f"it nests deeper than {MAX_DEPTH} levels"),
        ('["\\ud800"]', "lone surrogate or a NUL character"),
        ('{"\\udfff": 1}', "lone surrogate or a NUL character"),
        ('["a\\u0000b"]', "lone surrogate or a NUL character"),
    ],
)
def test_what_the_databases_cannot_store_is_refused_saying_why(text, problem):
    with pytest.raises(json.JSONDecodeError) as refused:
        loads(text)

    assert problem in str(refused.value)


def test_a_surrogate_pair_is_one_character_and_stored_as_such():
    assert loads('["\\ud83d\\ude00"]') == ["\U0001f600"]
