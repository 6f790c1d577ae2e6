"""JSON that both databases can store, read strictly.

Python's `json` accepts `NaN` and `Infinity`, reads `1e400` as infinity, nests
as deep as its stack allows and keeps lone surrogates and NUL in strings: each
of those fails later, in SQLite's `JSON_VALID` check or PostgreSQL's `jsonb`,
as a server error. `StrictJSONDecoder` refuses them while parsing, with a
sentence saying which; the API's bodies and the kinds' JSON form fields use it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
LARGEST_INTEGER = 2**63 - 1  # PostgreSQL's bigint, SQLite's integer
UNSTORABLE_CHARACTER = re.compile("[\ud800-\udfff\x00]")


class StrictJSONDecoder(json.JSONDecoder):
    """A JSON decoder that raises JSONDecodeError for anything the databases cannot store."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs |= {"parse_constant": refuse_constant, "parse_float": finite, "parse_int": bounded}
        super().__init__(**kwargs)

    def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
        try:
            value = super().decode(s, *args, **kwargs)
        except json.JSONDecodeError:
            raise
        except RecursionError:
            raise json.JSONDecodeError(f"it nests deeper than {MAX_DEPTH} levels", s, 0) from None
        except ValueError as exc:  # from the number hooks, or Python's digit limit
            raise json.JSONDecodeError(str(exc), s, 0) from None
        problem = unstorable(value)
        if problem:
            raise json.JSONDecodeError(problem, s, 0)
        return value


def refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large a number to store")
    return number


def bounded(text: str) -> int:
    # Checked by length first: converting thousands of digits is slow, and refused.
    number = int(text) if len(text) <= len(str(-LARGEST_INTEGER)) else LARGEST_INTEGER + 1
    if abs(number) > LARGEST_INTEGER:
        raise ValueError(f"integers must lie within ±{LARGEST_INTEGER}")
    return number


def unstorable(value: Any, depth: int = 1) -> str | None:
    """Say what in a parsed value cannot be stored, or None."""
    if depth > MAX_DEPTH:
        return f"it nests deeper than {MAX_DEPTH} levels"
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key) or unstorable(item, depth + 1)
            if problem:
                return problem
    if isinstance(value, list):
        for item in value:
            problem = unstorable(item, depth + 1)
            if problem:
                return problem
    return None


def text_problem(text: str) -> str | None:
    if UNSTORABLE_CHARACTER.search(text):
        return "its text holds a lone surrogate or a NUL character"
    return None
