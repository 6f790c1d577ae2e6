"""Migration 0004, which installs the triggers the PostgreSQL listener hears."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.db import connection

TRIGGERS = {
    ("coordhub_operation_changed", "operations_operation"),
    ("coordhub_slot_changed", "operations_slot"),
}
FUNCTIONS = {"coordhub_operation_changed", "coordhub_slot_changed"}


def installed() -> tuple[set[tuple[str, str]], set[str]]:
    """The coordhub triggers (with their tables) and trigger functions in the database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE tgname LIKE 'coordhub%%'"
        )
        triggers = set(cursor.fetchall())
        cursor.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'coordhub%%'")
        functions = {name for (name,) in cursor.fetchall()}
    return triggers, functions


def round_trip(look: Callable[[], object]) -> tuple[object, object, object]:
    """What `look` sees with migration 0004 applied, once reversed, and once reapplied.

    Later migrations are reversed first and reapplied at the end: the round trip is
    0004's alone.
    """
    try:
        call_command("migrate", "operations", "0004", verbosity=0)
        applied = look()
        call_command("migrate", "operations", "0003", verbosity=0)
        reversed_ = look()
        call_command("migrate", "operations", "0004", verbosity=0)
        reapplied = look()
    finally:
        call_command("migrate", "operations", verbosity=0)
    return applied, reversed_, reapplied


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_the_triggers_come_with_the_migration_and_go_with_its_reversal():
    applied, reversed_, reapplied = round_trip(installed)

    assert applied == (TRIGGERS, FUNCTIONS)
    assert reversed_ == (set(), set())
    assert reapplied == (TRIGGERS, FUNCTIONS)


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_on_sqlite_the_migration_changes_nothing_both_ways():
    def schema() -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
            return cursor.fetchall()

    applied, reversed_, reapplied = round_trip(schema)

    assert reversed_ == applied
    assert reapplied == applied
