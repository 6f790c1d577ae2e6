"""What one request leaves for the next: SQLite connections and the Redis client."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db.utils import ConnectionHandler

from coordhub.sqlite.base import DatabaseWrapper


def database(name: str) -> DatabaseWrapper:
    """A coordhub SQLite connection as a request gets one: a wrapper of its own."""
    settings = ConnectionHandler().configure_settings(
        {"default": {"ENGINE": "coordhub.sqlite", "NAME": name}}
    )
    return DatabaseWrapper(settings["default"])


@pytest.fixture(autouse=True)
def own_files_only(django_db_blocker):
    """These tests open SQLite files of their own, never the test database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    return str(tmp_path / "reuse.sqlite3")


def test_the_next_request_gets_the_connection_the_last_one_closed(sqlite_file):
    first = database(sqlite_file)
    first.ensure_connection()
    opened = first.connection
    first.close()

    second = database(sqlite_file)
    second.ensure_connection()

    assert second.connection is opened
    with second.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_work_left_uncommitted_is_rolled_back_before_the_connection_is_reused(sqlite_file):
    first = database(sqlite_file)
    with first.cursor() as cursor:
        cursor.execute("CREATE TABLE note (text TEXT)")
    first.connection.execute("BEGIN")
    first.connection.execute("INSERT INTO note VALUES ('half done')")
    first.close()

    second = database(sqlite_file)
    with second.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM note")
        assert cursor.fetchone() == (0,)
    assert not second.connection.in_transaction


def test_a_connection_closed_inside_an_atomic_block_is_not_handed_on(sqlite_file):
    first = database(sqlite_file)
    first.ensure_connection()
    held = first.connection
    first.in_atomic_block = True  # as transaction.atomic leaves it while a block runs
    first.close()

    second = database(sqlite_file)
    second.ensure_connection()

    assert second.connection is not held


def test_each_database_file_keeps_its_own_connections(tmp_path):
    one, other = database(str(tmp_path / "one.sqlite3")), database(str(tmp_path / "other.sqlite3"))
    one.ensure_connection()
    from_one = one.connection
    one.close()

    other.ensure_connection()

    assert other.connection is not from_one
