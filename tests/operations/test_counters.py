"""Lifetime counters: one atomic statement per event, kept in the database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from operations import counters
from operations.models import Counter


@pytest.mark.django_db
def test_every_counter_reads_zero_until_something_is_counted():
    assert counters.snapshot() == dict.fromkeys(counters.NAMES, 0)
    assert counters.success_rate(counters.snapshot()) is None


@pytest.mark.django_db
def test_adding_creates_the_counter_once_then_adds_to_it():
    counters.add(counters.COMPLETED)
    counters.add(counters.COMPLETED, 4)
    counters.add(counters.FAILED)

    assert Counter.objects.get(name=counters.COMPLETED).value == 5
    assert counters.success_rate(counters.snapshot()) == 5 / 6


@pytest.mark.django_db(transaction=True)
def test_racing_adds_lose_nothing_even_when_the_counter_is_new():
    def add_ten(_: int) -> None:
        try:
            for _ in range(10):
                counters.add(counters.RELEASES)
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add_ten, range(4)))

    assert counters.snapshot()[counters.RELEASES] == 40


@pytest.mark.django_db
def test_inside_a_counted_block_counters_are_locked_last_and_in_name_order():
    with CaptureQueriesContext(connection) as captured, transaction.atomic(), counters.counted():
        counters.add(counters.RELEASES)
        counters.add(counters.FAILED, 2)
        Counter.objects.filter(name="something else").exists()
        counters.add(counters.RELEASES)

    touched = [
        query["sql"]
        for query in captured.captured_queries
        if "operations_counter" in query["sql"] and query["sql"].startswith(("UPDATE", "SELECT"))
    ]
    assert touched[0].startswith("SELECT")  # the block's own work came first
    assert ["'failed'" in touched[1], "'releases'" in touched[2]] == [True, True]
    assert counters.snapshot()[counters.FAILED] == 2
    assert counters.snapshot()[counters.RELEASES] == 2
