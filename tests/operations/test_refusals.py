"""Refused starts counted per minute and reason: one atomic addition each, never an error."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, connection, transaction

from operations import refusals
from operations.admission import admit
from operations.exceptions import NoFreeSlot
from operations.models import Operation, RefusalCount

MINUTE = datetime(2030, 1, 1, 12, 7, tzinfo=UTC)


def counted() -> dict[tuple[datetime, str], int]:
    return {(row.minute, row.reason): row.count for row in RefusalCount.objects.all()}


@pytest.mark.django_db
def test_each_refusal_adds_one_to_the_row_of_its_minute_and_reason():
    refusals.record("concurrency_limit", at=MINUTE + timedelta(seconds=5))
    refusals.record("concurrency_limit", at=MINUTE + timedelta(seconds=59.9))
    refusals.record("rate_limited", at=MINUTE)
    refusals.record("rate_limited", at=MINUTE + timedelta(minutes=1))

    assert counted() == {
        (MINUTE, "concurrency_limit"): 2,
        (MINUTE, "rate_limited"): 1,
        (MINUTE + timedelta(minutes=1), "rate_limited"): 1,
    }


@pytest.mark.django_db(transaction=True)
def test_racing_refusals_lose_nothing_even_when_the_row_is_new():
    def refuse_ten(_: int) -> None:
        try:
            for _ in range(10):
                refusals.record("concurrency_limit", at=MINUTE)
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(refuse_ten, range(4)))

    assert counted() == {(MINUTE, "concurrency_limit"): 40}


@pytest.mark.django_db
def test_a_database_failure_while_counting_is_logged_and_not_raised(monkeypatch, caplog):
    def fail(*args: object) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(refusals, "add_one", fail)

    with caplog.at_level(logging.WARNING, logger="operations.refusals"):
        refusals.record("rate_limited")

    assert "Could not count a start refused for rate_limited" in caplog.text
    assert not RefusalCount.objects.exists()


@pytest.mark.django_db
def test_a_failed_count_inside_a_transaction_leaves_that_transaction_usable(monkeypatch):
    def broken(*args: object) -> None:
        with connection.cursor() as cursor:  # PostgreSQL now aborts the transaction...
            cursor.execute("SELECT count FROM no_such_table")

    monkeypatch.setattr(refusals, "add_one", broken)

    with transaction.atomic():
        refusals.record("rate_limited")
        Operation.objects.create(kind="simulated")  # ...unless the count had its savepoint

    assert Operation.objects.count() == 1


@pytest.mark.django_db
def test_a_start_refused_for_a_full_pool_is_counted_and_an_admitted_one_is_not(configure):
    configure(max_concurrent_operations=1)
    admit("simulated", {})
    assert not RefusalCount.objects.exists()

    with pytest.raises(NoFreeSlot):
        admit("simulated", {})

    assert list(RefusalCount.objects.values_list("reason", "count")) == [("concurrency_limit", 1)]


@pytest.mark.django_db
def test_prune_deletes_the_rows_older_than_two_days():
    refusals.record("rate_limited", at=MINUTE - timedelta(days=2, minutes=1))
    refusals.record("rate_limited", at=MINUTE - timedelta(days=2))

    assert refusals.prune(now=MINUTE) == 1
    assert counted() == {(MINUTE - timedelta(days=2), "rate_limited"): 1}
