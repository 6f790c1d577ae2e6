"""Turn a JSON value or an environment string into a setting's type.

`coordhub.config` applies it to each layer; a ValueError there becomes coordhub.E001.
"""

from __future__ import annotations

from typing import Any

SETTING_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def coerce(kind: type, raw: Any) -> Any:
    """Turn a JSON value or an environment string into `kind`, or raise ValueError."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return raw.strip().lower() in TRUE_WORDS
        raise ValueError("expected true or false")
    if isinstance(raw, bool):
        raise ValueError(f"expected {kind.__name__}, not a boolean")
    if kind is int:
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str):
            return int(raw.strip())
        raise ValueError("expected a whole number")
    if kind is float:
        if isinstance(raw, (int, float)):
            return float(raw)
        if isinstance(raw, str):
            return float(raw.strip())
        raise ValueError("expected a number")
    if not isinstance(raw, str):
        raise ValueError("expected a string")
    return raw.strip()
