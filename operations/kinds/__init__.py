"""Operation kinds: registered callables whose parameters a Django form validates.

Register a kind with a form describing its parameters and a function taking
an `OperationContext` and the cleaned parameters:

    class ReportParams(forms.Form):
        account = forms.CharField(max_length=64)

    @register("report", ReportParams, "Build the monthly report for an account.")
    def build_report(context, account):
        for step, page in enumerate(pages(account)):
            context.check()                       # stop here if cancelled or timed out
            context.progress(step * 100 // total, f"page {step}")
        return {"pages": total}                   # stored as the operation's result (JSON)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms

from operations.exceptions import InvalidParams, UnknownKind

if TYPE_CHECKING:
    from operations.execution import OperationContext

KindFunction = Callable[..., Any]

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


@dataclass(frozen=True)
class Kind:
    name: str
    function: KindFunction
    params_form: type[forms.Form]
    description: str

    def validate(self, params: object) -> dict[str, Any]:
        """Return the cleaned parameters, or raise InvalidParams naming each problem."""
        if not isinstance(params, dict):
            raise InvalidParams(self.name, {"params": ["Must be a JSON object."]})
        form = self.params_form(data=params)
        valid = form.is_valid()
        errors = {field: list(messages) for field, messages in form.errors.items()}
        errors |= json_type_errors(form, params)  # says more than the form's coercion
        errors |= {
            key: ["Is not a parameter of this kind."] for key in params if key not in form.fields
        }
        if errors or not valid:
            raise InvalidParams(self.name, errors)
        return {key: value for key, value in form.cleaned_data.items() if value is not None}


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


JSON_NAMES = {
    bool: "true or false",
    int: "a number",
    float: "a number",
    str: "a string",
    dict: "an object",
    list: "an array",
    type(None): "null",
}

_registry: dict[str, Kind] = {}


def register(
    name: str, params_form: type[forms.Form], description: str = ""
) -> Callable[[KindFunction], KindFunction]:
    """Register `function` as the kind `name`."""

    def decorator(function: KindFunction) -> KindFunction:
        _registry[name] = Kind(name, function, params_form, description or function.__doc__ or "")
        return function

    return decorator


def get_kind(name: object) -> Kind:
    """Return the registered kind `name`, or raise UnknownKind."""
    if not isinstance(name, str) or name not in _registry:
        raise UnknownKind(name, known_kinds())
    return _registry[name]


def known_kinds() -> list[str]:
    return sorted(_registry)


class JSONObjectField(forms.JSONField):
    """A JSON object parameter; an empty box means none."""

    widget = forms.Textarea(attrs={"rows": 3, "placeholder": '{"customer": 42}'})

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None else super().prepare_value(value)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is not None and not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")


class SimulatedParams(forms.Form):
    duration = forms.FloatField(
        required=False,
        min_value=0.001,
        max_value=3600,
        help_text="Seconds of simulated work (more than 0, at most 3600; default 2).",
    )
    fail = forms.BooleanField(required=False, help_text="Fail at the end instead of completing.")
    data = JSONObjectField(required=False, help_text="Any JSON object; echoed in the result.")


class SimulatedFailure(Exception):
    """The failure a `simulated` operation was asked for."""


@register("simulated", SimulatedParams, "Placeholder work: sleeps, reporting progress.")
def simulated(
    context: OperationContext,
    duration: float = 2.0,
    fail: bool = False,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sleep for `duration` seconds in steps, reporting progress and heeding cancellation."""
    started = time.monotonic()
    steps = max(1, min(100, round(duration * 10)))
    for step in range(1, steps + 1):
        context.sleep(started + duration * step / steps - time.monotonic())
        context.progress(step * 100 // steps, f"step {step} of {steps}")
    if fail:
        raise SimulatedFailure("Simulated failure, as requested by the 'fail' parameter.")
    return {"duration": duration, "processed_data": data or {}}
