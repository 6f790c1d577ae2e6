"""Starting an operation for a request: the budget first, then admission."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from api import limits
from api.starts import start_operation
from operations.exceptions import NoFreeSlot, RateLimited, UnknownKind
from operations.models import Operation, Slot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


@pytest.fixture(autouse=True)
def limits_on(limits_for):
    limits_for(requests_per_minute=2, max_concurrent_operations=1)


def request():
    made = RequestFactory().post("/api/operations", REMOTE_ADDR="127.0.0.1")
    made.user = AnonymousUser()
    return made


def test_a_start_spends_one_start_and_admits_the_operation_for_this_client():
    started = start_operation(request(), "simulated", {"duration": 5})

    assert started.operation.client_key == "ip:127.0.0.1"
    assert Slot.objects.get(operation=started.operation)
    assert (started.usage.limit, started.usage.remaining) == (2, 1)


def test_an_admission_refusal_carries_the_budget_it_spent():
    start_operation(request(), "simulated", {"duration": 5})

    with pytest.raises(NoFreeSlot) as refused:
        start_operation(request(), "simulated", {})

    assert refused.value.usage.remaining == 0
    assert Operation.objects.count() == 1


def test_past_the_budget_nothing_is_admitted(configure):
    configure(max_concurrent_operations=5)
    start_operation(request(), "simulated", {})
    start_operation(request(), "simulated", {})

    with pytest.raises(RateLimited) as refused:
        start_operation(request(), "simulated", {})

    assert refused.value.usage.exceeded
    assert limits.peek(request(), limits.START).count == 3
    assert Operation.objects.count() == 2


def test_an_unknown_kind_is_refused_before_anything_is_created():
    with pytest.raises(UnknownKind):
        start_operation(request(), "nope", {})

    assert not Operation.objects.exists()
