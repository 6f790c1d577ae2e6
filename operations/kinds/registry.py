"""The registry of operation kinds: a name, a function, and a form for its parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms

from operations.exceptions import InvalidParams, KindAlreadyRegistered, UnknownKind
from operations.kinds.params import json_type_errors

KindFunction = Callable[..., Any]
ResultView = Callable[[dict[str, Any], Any], Any]


def stored_result(params: dict[str, Any], result: Any) -> Any:
    """Show a result as it was stored."""
    return result


@dataclass(frozen=True)
class Kind:
    name: str
    function: KindFunction
    params_form: type[forms.Form]
    description: str
    # How answers show a result from its stored form and the params (see `register`).
    result_view: ResultView = stored_result

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


_registry: dict[str, Kind] = {}


def register(
    name: str,
    params_form: type[forms.Form],
    description: str = "",
    *,
    result_view: ResultView = stored_result,
) -> Callable[[KindFunction], KindFunction]:
    """Register `function` as the kind `name`; a name may be registered once.

    `result_view(params, result)` builds the result answers show from what was
    stored, so that a kind need not store a copy of its params in its result.
    """

    def decorator(function: KindFunction) -> KindFunction:
        if name in _registry:
            raise KindAlreadyRegistered(name)
        text = description or function.__doc__ or ""
        _registry[name] = Kind(name, function, params_form, text, result_view)
        return function

    return decorator


def unregister(name: str) -> None:
    """Remove the kind `name` (for tests and plugins that replace a kind on purpose)."""
    _registry.pop(name, None)


def get_kind(name: object) -> Kind:
    """Return the registered kind `name`, or raise UnknownKind."""
    if not isinstance(name, str) or name not in _registry:
        raise UnknownKind(name, known_kinds())
    return _registry[name]


def shown_result(kind_name: str, params: dict[str, Any], result: Any) -> Any:
    """The result of an operation of `kind_name` as answers show it (as stored if unknown)."""
    kind = _registry.get(kind_name)
    return kind.result_view(params, result) if kind else result


def known_kinds() -> list[str]:
    return sorted(_registry)
