"""Cursors lead back to their row, in their direction, and only in the list they were made for."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing

from api.cursors import CURSOR_SALT, Position, cursor_of, cursor_position
from operations.exceptions import InvalidRequest

POSITION = Position(datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC), uuid.uuid4())


@pytest.mark.parametrize("newer", [False, True])
def test_a_cursor_leads_back_to_its_row_in_its_direction(newer):
    cursor = cursor_of(POSITION, "filters", newer=newer)

    assert cursor_position(cursor, "filters") == (POSITION, newer)


def test_no_cursor_is_the_first_page():
    assert cursor_position("", "filters") == (None, False)


def test_a_cursor_given_out_before_there_was_a_way_back_still_leads_to_the_older_rows():
    since_epoch = (POSITION.created_at - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    payload = [round(since_epoch * 1_000_000), POSITION.id.hex, "filters"]
    cursor = signing.Signer(salt=CURSOR_SALT).sign_object(payload)

    assert cursor_position(cursor, "filters") == (POSITION, False)


def test_a_cursor_with_a_flag_it_never_carries_is_refused():
    payload = [0, POSITION.id.hex, "filters", "sideways"]
    cursor = signing.Signer(salt=CURSOR_SALT).sign_object(payload)

    with pytest.raises(InvalidRequest, match="is not a cursor this list gave out"):
        cursor_position(cursor, "filters")


def test_a_cursor_of_another_list_is_refused():
    cursor = cursor_of(POSITION, "filters", newer=True)

    with pytest.raises(InvalidRequest, match="continues a list with other filters"):
        cursor_position(cursor, "other filters")


def test_a_long_bad_cursor_is_quoted_cut_short():
    with pytest.raises(InvalidRequest) as refused:
        cursor_position("x" * 500, "filters")

    assert str(refused.value).startswith(f"cursor={'x' * 40!r}… is not a cursor")


def test_just_older_is_the_place_right_before_a_row():
    place = POSITION.just_older()

    assert (place.created_at, place.id.int) == (POSITION.created_at, POSITION.id.int - 1)


def test_just_older_than_the_lowest_id_is_the_highest_id_a_microsecond_before():
    lowest = Position(POSITION.created_at, uuid.UUID(int=0))

    assert lowest.just_older() == Position(
        POSITION.created_at - timedelta(microseconds=1), uuid.UUID(int=2**128 - 1)
    )
