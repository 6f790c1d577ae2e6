"""Reading a request body as a JSON object, or saying exactly what is wrong with it."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from api.bodies import json_object
from operations.exceptions import InvalidJson, PayloadTooLarge, UnsupportedMediaType


def post(body: str | bytes, content_type: str = "application/json"):
    return RequestFactory().post("/api/operations", body, content_type=content_type)


def test_a_json_object_is_read_as_it_was_sent():
    assert json_object(post('{"kind": "simulated", "params": {"duration": 1.5}}')) == {
        "kind": "simulated",
        "params": {"duration": 1.5},
    }


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("[1, 2]", "The body must be a JSON object, not an array."),
        ('"text"', "The body must be a JSON object, not a string."),
        ("42", "The body must be a JSON object, not a number."),
        ("null", "The body must be a JSON object, not null."),
        ("true", "The body must be a JSON object, not a boolean."),
    ],
)
def test_json_that_is_not_an_object_is_named_by_its_type(body, detail):
    with pytest.raises(InvalidJson) as raised:
        json_object(post(body))

    assert str(raised.value) == detail


@pytest.mark.parametrize("body", ["{", "{'kind': 1}", b"\xff\xfe{}"])
def test_text_that_is_not_json_is_invalid_json(body):
    with pytest.raises(InvalidJson, match="The body is not valid JSON"):
        json_object(post(body))


def test_a_form_body_is_415_naming_what_was_sent():
    with pytest.raises(UnsupportedMediaType) as raised:
        json_object(post("kind=simulated", "application/x-www-form-urlencoded"))

    assert raised.value.status == 415
    assert "not 'application/x-www-form-urlencoded'" in str(raised.value)


def test_a_body_over_the_upload_limit_is_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    with pytest.raises(PayloadTooLarge, match="larger than 1 KiB"):
        json_object(post('{"data": "' + "x" * 2048 + '"}'))
