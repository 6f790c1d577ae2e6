"""Parameter forms: how a kind's Django form judges JSON values, and the fields kinds share."""

from __future__ import annotations

from typing import Any

from django import forms

from operations.json_values import StrictJSONDecoder

# JSON types each form field accepts, so that "5" is not taken for 5.
JSON_TYPES: list[tuple[type[forms.Field], tuple[type, ...]]] = [
    (forms.BooleanField, (bool,)),
    (forms.NullBooleanField, (bool,)),
    (forms.FloatField, (int, float)),  # before IntegerField, its base class
    (forms.DecimalField, (int, float)),
    (forms.IntegerField, (int,)),
    (forms.JSONField, (dict, list, str, int, float, bool)),
    (forms.CharField, (str,)),
    (forms.ChoiceField, (str,)),
]

JSON_NAMES = {
    bool: "true or false",
    int: "a number",
    float: "a number",
    str: "a string",
    dict: "an object",
    list: "an array",
    type(None): "null",
}


def json_type_errors(form: forms.Form, params: dict[str, Any]) -> dict[str, list[str]]:
    """Name the parameters whose JSON type does not fit their field."""
    errors = {}
    for name, field in form.fields.items():
        if name not in params or params[name] is None:
            continue
        accepted = next((types for cls, types in JSON_TYPES if isinstance(field, cls)), None)
        value = params[name]
        wrong_bool = isinstance(value, bool) and bool not in accepted if accepted else False
        if accepted and (wrong_bool or not isinstance(value, accepted)):
            expected = " or ".join(dict.fromkeys(JSON_NAMES[t] for t in accepted))
            errors[name] = [f"Must be {expected}, not {JSON_NAMES.get(type(value), 'that')}."]
    return errors


class JSONObjectField(forms.JSONField):
    """A JSON object parameter; an empty box means none. Read strictly, as API bodies are."""

    widget = forms.Textarea(attrs={"rows": 3, "placeholder": '{"customer": 42}'})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(decoder=StrictJSONDecoder, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None else super().prepare_value(value)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is not None and not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
