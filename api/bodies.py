"""Read request bodies: a JSON object, or an error saying what is wrong with it."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from operations.exceptions import InvalidJson, PayloadTooLarge, UnsupportedMediaType
from operations.json_values import StrictJSONDecoder

JSON_TYPE_NAMES = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def json_object(request: HttpRequest) -> dict[str, Any]:
    """Return the request body as a JSON object, or raise why it is not one."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"Send the body as application/json, not {request.content_type or 'nothing'!r}."
        )
    try:
        body = request.body
    except RequestDataTooBig as exc:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        raise PayloadTooLarge(f"The body is larger than {limit} KiB.") from exc
    try:
        data = json.loads(body, cls=StrictJSONDecoder)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJson(f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise InvalidJson(f"The body must be a JSON object, not {json_type(data)}.")
    return data


def json_type(value: object) -> str:
    return JSON_TYPE_NAMES.get(type(value), "a number")
