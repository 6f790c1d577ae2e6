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
ConcurrencyKey = Callable[[dict[str, Any]], object]
# A concurrency key is stored on the operation: longer ones are refused as invalid params.
MOST_KEY_CHARACTERS = 200


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
    # Caps narrower than the slots (see `register`): None for none.
    max_concurrent: int | None = None
    concurrency_key: ConcurrencyKey | None = None
    max_per_key: int = 1

    @property
    def capped(self) -> bool:
        return self.max_concurrent is not None or self.concurrency_key is not None

    def key_of(self, params: dict[str, Any]) -> str:
        """The concurrency key of cleaned `params` ("" for a kind without one)."""
        if self.concurrency_key is None:
            return ""
        try:
            key = self.concurrency_key(params)
        except Exception as exc:  # the kind's own code, on parameters it did not expect
            problem = f"Their concurrency key cannot be worked out ({type(exc).__name__})."
            raise InvalidParams(self.name, {"params": [problem]}) from exc
        key = "" if key is None else str(key)
        if len(key) > MOST_KEY_CHARACTERS or "\x00" in key:
            problem = (
                f"Their concurrency key is over {MOST_KEY_CHARACTERS} characters or holds NUL."
            )
            raise InvalidParams(self.name, {"params": [problem]})
        return key

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
        cleaned = {key: value for key, value in form.cleaned_data.items() if value is not None}
        self.key_of(cleaned)  # a key that cannot be worked out is refused before any spending
        return cleaned


_registry: dict[str, Kind] = {}


def register(
    name: str,
    params_form: type[forms.Form],
    description: str = "",
    *,
    result_view: ResultView = stored_result,
    max_concurrent: int | None = None,
    concurrency_key: ConcurrencyKey | None = None,
    max_per_key: int = 1,
) -> Callable[[KindFunction], KindFunction]:
    """Register `function` as the kind `name`; a name may be registered once.

    `result_view(params, result)` builds the result answers show from what was
    stored, so that a kind need not store a copy of its params in its result.

    Caps narrow the slots, never widen them: `max_concurrent` operations of this
    kind at once; and with `concurrency_key(params)` (say `lambda p: p["account"]`),
    at most `max_per_key` at once for each key (an empty key: no cap). A start
    beyond a cap is refused with 429 (`kind_limit`, `key_limit`) or waits in line.
    """
    for cap in (max_concurrent, max_per_key):
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            raise ValueError(f"A cap of kind {name!r} must be a whole number of 1 or more.")

    def decorator(function: KindFunction) -> KindFunction:
        if name in _registry:
            raise KindAlreadyRegistered(name)
        text = description or function.__doc__ or ""
        _registry[name] = Kind(
            name,
            function,
            params_form,
            text,
            result_view,
            max_concurrent=max_concurrent,
            concurrency_key=concurrency_key,
            max_per_key=max_per_key,
        )
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
