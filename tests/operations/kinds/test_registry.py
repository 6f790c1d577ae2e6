from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from django import forms

import operations.kinds
from operations.exceptions import InvalidParams, KindAlreadyRegistered, UnknownKind
from operations.kinds import get_kind, known_kinds, register, unregister

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["nope", "", None, 3, ["simulated"]])
def test_unknown_kind_names_the_known_ones(name):
    with pytest.raises(UnknownKind) as raised:
        get_kind(name)

    assert "known kinds: simulated" in str(raised.value)
    assert raised.value.code == "unknown_kind"


@pytest.mark.parametrize("params", [[], "duration=1", 5, None])
def test_params_must_be_an_object(params):
    with pytest.raises(InvalidParams) as raised:
        get_kind("simulated").validate(params)

    assert raised.value.errors == {"params": ["Must be a JSON object."]}


def test_registering_a_name_twice_is_an_error_and_keeps_the_first():
    def first(context):
        return "first"

    def second(context):
        return "second"

    register("twice", forms.Form)(first)
    try:
        with pytest.raises(KindAlreadyRegistered) as raised:
            register("twice", forms.Form)(second)

        assert str(raised.value) == "An operation kind named 'twice' is already registered."
        assert get_kind("twice").function is first
    finally:
        unregister("twice")
    assert "twice" not in known_kinds()


def test_the_shipped_kind_cannot_be_replaced_by_accident():
    with pytest.raises(KindAlreadyRegistered):
        register("simulated", forms.Form)(lambda context: None)

    assert get_kind("simulated").description == "Placeholder work: sleeps, reporting progress."


def test_the_readme_example_is_the_packages_docstring_and_registers_a_kind():
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"### Registering a kind.*?```python\n(.*?)```", readme, re.S)[1]
    after = operations.kinds.__doc__.split("parameters:\n\n", 1)[1]
    indented = re.match(r"(?:(?:    .*)?\n)+", after)[0]

    assert textwrap.dedent(indented).strip() == example.strip()
    namespace = {"render_page": lambda account, page: None}
    exec(compile(example, "README.md", "exec"), namespace)
    try:
        assert get_kind("report").validate({"account": "acme", "pages": 2}) == {
            "account": "acme",
            "pages": 2,
        }
    finally:
        unregister("report")
