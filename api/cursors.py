"""The history's cursors: a row's place in (created_at, id), signed and bound to one list.

A cursor leads to the rows older than its row, or, flagged `newer`, to those newer
than it: the next and the previous page of a keyset walk (api.history). It is
signed, so a client cannot craft one, and carries a fingerprint of the filters it
was made for, so it cannot be moved to another list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core import signing

from operations.exceptions import InvalidRequest
from operations.models import Operation

CURSOR_SALT = "coordhub.api.history.cursor"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# The flag of a cursor to the newer rows. Without it, to the older: as cursors were
# before there was a way back, so a `next` link given out then still works.
NEWER = "newer"
SHOWN_CHARACTERS = 40


@dataclass(frozen=True)
class Position:
    """Where a page starts or ends: a row's creation time and id."""

    created_at: datetime
    id: uuid.UUID

    @classmethod
    def of(cls, operation: Operation) -> Position:
        return cls(operation.created_at, operation.id)

    def just_older(self) -> Position:
        """The place just older than this row and newer than every older one.

        The rows newer than it are this row and those newer.
        """
        if self.id.int:
            return Position(self.created_at, uuid.UUID(int=self.id.int - 1))
        return Position(self.created_at - MICROSECOND, uuid.UUID(int=(1 << 128) - 1))


def cursor_of(position: Position, fingerprint: str, *, newer: bool = False) -> str:
    """A cursor to the rows older (or `newer`) than `position`, in the list of `fingerprint`."""
    since_epoch = (position.created_at - EPOCH) // MICROSECOND
    payload = [since_epoch, position.id.hex, fingerprint, *([NEWER] if newer else [])]
    return signing.Signer(salt=CURSOR_SALT).sign_object(payload)


def cursor_position(cursor: str, fingerprint: str) -> tuple[Position | None, bool]:
    """Where `cursor` leads from, and whether to the newer rows; (None, False) for none.

    InvalidRequest for a cursor this API did not give, or gave for another list.
    """
    if not cursor:
        return None, False
    try:
        since_epoch, id_hex, bound_to, *flags = signing.Signer(salt=CURSOR_SALT).unsign_object(
            cursor
        )
        position = Position(EPOCH + since_epoch * MICROSECOND, uuid.UUID(hex=id_hex))
        if flags not in ([], [NEWER]):
            raise ValueError(f"A cursor flagged {flags!r}.")
    except (signing.BadSignature, ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise InvalidRequest(
            f"cursor={quoted(cursor)} is not a cursor this list gave out; follow a `next` "
            "or `prev` link as it was given, or start again without a cursor."
        ) from exc
    if bound_to != fingerprint:
        raise InvalidRequest(
            f"cursor={quoted(cursor)} continues a list with other filters; "
            "send it with the filters of the link that gave it."
        )
    return position, flags == [NEWER]


def quoted(cursor: str) -> str:
    """The cursor as a message quotes it, cut short: it came from the client."""
    if len(cursor) > SHOWN_CHARACTERS:
        return repr(cursor[:SHOWN_CHARACTERS]) + "…"
    return repr(cursor)
