from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django_tasks_db.models import DBTaskResult

from operations.admin import ApiKeyAdmin
from operations.admin.columns import duration_text
from operations.admission import admit
from operations.apikeys import issue
from operations.line import release
from operations.maintenance import beat
from operations.models import ApiKey, Operation, Slot, Status
from operations.slots import ensure_slots, holds_of

pytestmark = pytest.mark.django_db

OPERATIONS = reverse("admin:operations_operation_changelist")
SLOTS = reverse("admin:operations_slot_changelist")
HEALTH = reverse("admin-health")
SITE_NAME = '<div id="site-name"><a href="/admin/">coordhub</a></div>'


@pytest.fixture(autouse=True)
def two_slots(configure):
    configure(max_concurrent_operations=2, slot_lease_seconds=30)
    ensure_slots(2)


@pytest.fixture
def start(django_capture_on_commit_callbacks):
    """Admit an operation the way every entry point does, running its on-commit enqueue."""

    def admit_one(**params: object) -> Operation:
        with django_capture_on_commit_callbacks(execute=True):
            return admit("simulated", params, client_key="ip:10.0.0.1")

    return admit_one


def ended(status: Status = Status.COMPLETED, **fields: object) -> Operation:
    defaults = {"params": {"duration": 1.0, "fail": False}, "finished_at": timezone.now()}
    return Operation.objects.create(
        kind="simulated", status=status, client_key="ip:10.0.0.9", **{**defaults, **fields}
    )


def change_url(operation: Operation) -> str:
    return reverse("admin:operations_operation_change", args=[operation.pk])


def act(client, url: str, action: str, *selected: object, **extra: str):
    """Post an admin action from a changelist, as its "Go" button does."""
    data = {"action": action, "index": 0, "_selected_action": [str(pk) for pk in selected]}
    return client.post(url, {**data, **extra})


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


def test_operation_changelist_renders_with_filters_and_search(admin_client, start):
    queued = start()
    done = ended(error="Quota exhausted upstream.")

    everything = admin_client.get(OPERATIONS)
    filtered = admin_client.get(
        OPERATIONS,
        {
            "status__exact": "queued",
            "kind": "simulated",
            "created_at__gte": str(timezone.now().replace(hour=0, minute=0, second=0)),
        },
    )
    by_short_id = admin_client.get(OPERATIONS, {"q": queued.short_id})
    by_error = admin_client.get(OPERATIONS, {"q": "quota exhausted"})

    assert everything.status_code == 200
    assert {queued, done} == set(everything.context["cl"].result_list)
    assert "ip:10.0.0.1" in everything.text
    assert "0%" in everything.text
    assert filtered.status_code == 200
    assert list(filtered.context["cl"].result_list) == [queued]
    assert list(by_short_id.context["cl"].result_list) == [queued]
    assert list(by_error.context["cl"].result_list) == [done]


def test_operation_detail_is_read_only_and_refuses_save_and_add(admin_client, start):
    operation = start()

    page = admin_client.get(change_url(operation))
    save = admin_client.post(change_url(operation), {"kind": "other", "_save": "Save"})
    add = admin_client.get(reverse("admin:operations_operation_add"))

    assert page.status_code == 200
    assert 'name="kind"' not in page.text
    assert 'name="params"' not in page.text
    assert 'name="_save"' not in page.text
    assert "ip:10.0.0.1" in page.text
    assert reverse(
        "admin:operations_slot_change", args=[holds_of(operation.pk)[0].slot_number]
    ) in (page.text)
    assert save.status_code == 403
    assert add.status_code == 403
    operation.refresh_from_db()
    assert operation.kind == "simulated"


def test_only_finished_operations_can_be_deleted(admin_client, start):
    active = start()
    done = ended()

    refused = admin_client.post(
        reverse("admin:operations_operation_delete", args=[active.pk]), {"post": "yes"}
    )
    deleted = admin_client.post(
        reverse("admin:operations_operation_delete", args=[done.pk]), {"post": "yes"}
    )
    bulk = act(admin_client, OPERATIONS, "delete_selected", active.pk, post="yes")

    assert refused.status_code == 403
    assert deleted.status_code == 302
    assert bulk.status_code == 403
    assert list(Operation.objects.all()) == [active]


def test_cancel_action_cancels_a_queued_operation_and_frees_its_slot(admin_client, start):
    operation = start()

    response = act(admin_client, OPERATIONS, "cancel_operations", operation.pk)

    assert response.status_code == 302
    operation.refresh_from_db()
    assert operation.status == Status.CANCELLED
    assert Slot.objects.held().count() == 0
    assert messages_of(response) == [("success", "Cancelled 1 queued operation.")]


def test_cancel_action_asks_a_running_operation_to_stop(admin_client, start):
    operation = start()
    Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING)

    response = act(admin_client, OPERATIONS, "cancel_operations", operation.pk)

    operation.refresh_from_db()
    assert operation.status == Status.RUNNING
    assert operation.cancel_requested
    assert messages_of(response) == [
        (
            "success",
            "Requested cancellation of 1 running operation; its worker stops it at its next check.",
        )
    ]


def test_cancel_action_reports_finished_operations_and_leaves_them(admin_client, start):
    queued = start()
    done = ended()

    response = act(admin_client, OPERATIONS, "cancel_operations", queued.pk, done.pk)

    assert response.status_code == 302
    done.refresh_from_db()
    assert done.status == Status.COMPLETED
    assert messages_of(response) == [
        ("success", "Cancelled 1 queued operation."),
        (
            "warning",
            f'1 operation had already ended and was left as it was: <a href="{change_url(done)}">'
            f"{done.short_id}</a>.",
        ),
    ]


def test_cancel_action_works_from_the_detail_page(admin_client, start):
    operation = start()

    response = admin_client.post(
        change_url(operation),
        {"CHANGE_FORM-action": "cancel_operations", "_selected_action": str(operation.pk)},
    )

    assert response.status_code == 302
    assert response.url == change_url(operation)
    operation.refresh_from_db()
    assert operation.status == Status.CANCELLED


def test_retry_action_starts_a_new_operation_through_admission(
    admin_client, admin_user, django_capture_on_commit_callbacks
):
    failed = ended(Status.FAILED, error="Boom.")

    with django_capture_on_commit_callbacks(execute=True):
        response = act(admin_client, OPERATIONS, "retry_operations", failed.pk)

    new = Operation.objects.exclude(pk=failed.pk).get()
    assert new.status == Status.QUEUED
    assert (new.kind, new.params, new.client_key) == (failed.kind, failed.params, failed.client_key)
    assert new.user == admin_user
    assert new.retry_of == failed
    assert Slot.objects.get(operation=new)
    assert DBTaskResult.objects.filter(pk=new.task_id).exists()
    failed.refresh_from_db()
    assert failed.status == Status.FAILED
    assert messages_of(response) == [
        (
            "success",
            f'Started 1 new operation: <a href="{change_url(new)}">{new.short_id}</a>.',
        )
    ]


def test_retry_when_every_slot_is_busy_reports_the_refusal_and_creates_nothing(admin_client, start):
    busy = [start(), start()]
    done = ended()

    response = act(admin_client, OPERATIONS, "retry_operations", done.pk)

    assert Operation.objects.count() == 3
    assert set(Slot.objects.held().values_list("operation_id", flat=True)) == {
        operation.pk for operation in busy
    }
    [(level, text)] = messages_of(response)
    assert level == "warning"
    assert text.startswith(
        f"Operation {done.short_id} was not retried: All 2 operation slots are busy;"
    )


def test_retry_of_an_unknown_kind_reports_the_admission_error(admin_client):
    gone = Operation.objects.create(kind="retired-kind", status=Status.FAILED)

    response = act(admin_client, OPERATIONS, "retry_operations", gone.pk)

    assert Operation.objects.count() == 1
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert text.startswith(
        f"Operation {gone.short_id} was not retried: There is no operation kind 'retired-kind';"
    )


def test_actions_need_permission_to_change_or_add_operations(client, start):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_operation"),
        Permission.objects.get(codename="view_slot"),
    )
    client.force_login(viewer)
    operation = start()

    page = client.get(OPERATIONS)
    response = act(client, OPERATIONS, "cancel_operations", operation.pk)

    assert page.status_code == 200
    assert "cancel_operations" not in page.text
    assert "retry_operations" not in page.text
    assert "move_to_front" not in page.text
    assert response.status_code == 200  # the changelist again, the unknown action refused
    operation.refresh_from_db()
    assert operation.status == Status.QUEUED


def test_slot_changelist_links_holders_and_flags_expired_leases(admin_client, start):
    fresh, stale = start(), start()
    Slot.objects.filter(operation=stale).update(
        lease_expires_at=timezone.now() - timedelta(seconds=5)
    )

    response = admin_client.get(SLOTS)
    detail = admin_client.get(reverse("admin:operations_slot_change", args=[1]))

    assert response.status_code == 200
    assert change_url(fresh) in response.text
    assert change_url(stale) in response.text
    changelist = response.context["cl"]
    expired = {slot.number: changelist.model_admin.expired(slot) for slot in changelist.result_list}
    assert expired == {1: False, 2: True}
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.text
    assert admin_client.get(reverse("admin:operations_slot_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:operations_slot_delete", args=[1]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_force_release_asks_for_confirmation_and_changes_nothing_before_it(admin_client, start):
    operation = start()
    [hold] = holds_of(operation.pk)

    response = act(admin_client, SLOTS, "force_release", hold.slot_number, 2)

    assert response.status_code == 200
    assert response.templates[0].name == ("admin/operations/slot/force_release_confirmation.html")
    assert f'name="lease_version_{hold.slot_number}" value="{hold.lease_version}"' in (
        response.text
    )
    assert 'name="post" value="yes"' in response.text
    assert str(operation) in response.text
    assert "Already free, so left as they are:\nslot 2." in response.text
    assert holds_of(operation.pk) == [hold]
    operation.refresh_from_db()
    assert operation.status == Status.QUEUED


def test_confirmed_force_release_frees_the_slot_and_fails_its_operation(admin_client, start):
    operation = start()
    [hold] = holds_of(operation.pk)
    Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING)

    response = admin_client.post(
        SLOTS,
        {
            "action": "force_release",
            "_selected_action": [hold.slot_number],
            f"lease_version_{hold.slot_number}": hold.lease_version,
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert Slot.objects.held().count() == 0
    operation.refresh_from_db()
    assert operation.status == Status.FAILED
    assert operation.error == "Slot force-released by admin in the admin."
    assert operation.finished_at is not None
    assert messages_of(response) == [
        ("success", "Force-released 1 slot; 1 operation was marked failed.")
    ]


def test_force_release_leaves_a_slot_that_changed_hands_after_the_confirmation_page(
    admin_client, start
):
    first = start()
    [shown] = holds_of(first.pk)
    release(shown)
    second = start()
    [now_held] = holds_of(second.pk)
    assert now_held.slot_number == shown.slot_number

    response = admin_client.post(
        SLOTS,
        {
            "action": "force_release",
            "_selected_action": [shown.slot_number],
            f"lease_version_{shown.slot_number}": shown.lease_version,
            "post": "yes",
        },
    )

    assert holds_of(second.pk) == [now_held]
    second.refresh_from_db()
    assert second.status == Status.QUEUED
    assert messages_of(response) == [
        (
            "warning",
            "Left alone, because they were free or changed hands after the confirmation page "
            f"was shown: slot {shown.slot_number}.",
        )
    ]


def test_force_release_of_free_slots_needs_no_confirmation(admin_client):
    response = act(admin_client, SLOTS, "force_release", 1, 2)

    assert response.status_code == 302
    assert messages_of(response) == [
        ("warning", "None of the selected slots is held, so there is nothing to release.")
    ]


def test_a_new_api_key_shows_its_secret_once_and_stores_only_a_digest(admin_client, admin_user):
    response = admin_client.post(
        "/admin/operations/apikey/add/", {"user": admin_user.pk, "name": "ci"}, follow=True
    )

    html = response.content.decode()
    secret = html.split("<code>", 1)[1].split("</code>", 1)[0]
    key = ApiKey.objects.get()
    assert secret.startswith("chk_")
    assert key.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (key.name, key.prefix, key.digest)
    assert (
        secret
        not in admin_client.get(f"/admin/operations/apikey/{key.pk}/change/").content.decode()
    )
    assert (
        admin_client.get(
            "/api/operations", headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 200
    )


def test_revoking_a_key_in_the_admin_stops_it_at_the_next_request(admin_client, admin_user):
    key, secret = issue(admin_user, "script")

    admin_client.post(
        "/admin/operations/apikey/",
        {"action": "revoke", helpers.ACTION_CHECKBOX_NAME: [key.pk]},
    )

    assert ApiKey.objects.get().revoked_at is not None
    response = Client().get("/api/operations", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401


@pytest.fixture
def key_clerk(django_user_model) -> User:
    """Staff who may add and view keys, and nothing about users."""
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.set(
        Permission.objects.filter(codename__in=["add_apikey", "view_apikey"])
    )
    return clerk


def test_staff_who_may_add_keys_cannot_issue_one_for_a_superuser(client, key_clerk, admin_user):
    client.force_login(key_clerk)

    response = client.post(
        "/admin/operations/apikey/add/", {"user": admin_user.pk, "name": "escalate"}
    )

    assert response.status_code == 200  # the form again, with the refused choice
    assert "Select a valid choice" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_staff_who_may_add_keys_are_offered_only_themselves(client, key_clerk, admin_user):
    client.force_login(key_clerk)

    form = client.get("/admin/operations/apikey/add/").context["adminform"].form
    created = client.post("/admin/operations/apikey/add/", {"user": key_clerk.pk, "name": "ci"})

    assert list(form.fields["user"].queryset) == [key_clerk]
    assert created.status_code == 302
    assert ApiKey.objects.get().user == key_clerk


def test_saving_a_key_for_someone_else_is_refused_even_past_the_form(key_clerk, admin_user, rf):
    request = rf.post("/admin/operations/apikey/add/")
    request.user = key_clerk
    model_admin = ApiKeyAdmin(ApiKey, admin.site)

    with pytest.raises(PermissionDenied):
        model_admin.save_model(request, ApiKey(user=admin_user, name="escalate"), None, False)
    assert not ApiKey.objects.exists()


def test_a_superuser_may_issue_a_key_for_another_user(admin_client, key_clerk):
    form = admin_client.get("/admin/operations/apikey/add/").context["adminform"].form
    created = admin_client.post(
        "/admin/operations/apikey/add/", {"user": key_clerk.pk, "name": "for clerk"}
    )

    assert key_clerk in form.fields["user"].queryset
    assert created.status_code == 302
    assert ApiKey.objects.get().user == key_clerk


def test_a_user_manager_may_issue_a_key_for_another_user(client, key_clerk, admin_user):
    key_clerk.user_permissions.add(Permission.objects.get(codename="change_user"))
    client.force_login(key_clerk)

    created = client.post("/admin/operations/apikey/add/", {"user": admin_user.pk, "name": "x"})

    assert created.status_code == 302
    assert ApiKey.objects.get().user == admin_user


def test_an_api_key_of_a_superuser_does_not_open_the_admin(admin_user):
    _, secret = issue(admin_user, "script")

    response = Client().get("/admin/", headers={"Authorization": f"Bearer {secret}"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_admin_is_coordhubs_and_lists_operations_not_task_results(admin_client):
    index = admin_client.get(reverse("admin:index"))
    changelist = admin_client.get(OPERATIONS)

    assert SITE_NAME in index.text
    assert "<title>coordhub administration | coordhub</title>" in index.text
    assert SITE_NAME in changelist.text
    assert not admin.site.is_registered(DBTaskResult)
    assert "django_tasks_database" not in [app["app_label"] for app in index.context["app_list"]]
    assert "Task Results" not in index.text
    assert f'<a href="{HEALTH}">Health</a>' in index.text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.04, "0.0 s"),
        (12.34, "12.3 s"),
        (59.96, "1 min 00 s"),
        (245, "4 min 05 s"),
        (7380, "2 h 03 min"),
        (-1.5, "0.0 s"),
    ],
)
def test_durations_read_in_tenths_then_minutes_then_hours(seconds, shown):
    assert duration_text(seconds) == shown


def test_changelist_shows_times_to_the_second_and_each_operations_duration(admin_client):
    started = datetime(2026, 11, 30, 12, 3, 7, tzinfo=UTC)
    ended(
        created_at=started - timedelta(seconds=2),
        started_at=started,
        finished_at=started + timedelta(minutes=4, seconds=5),
    )
    Operation.objects.create(
        kind="simulated",
        status=Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=12.3),
    )
    ended(Status.CANCELLED, started_at=None)  # cancelled while queued: it never ran

    page = admin_client.get(OPERATIONS)

    assert page.status_code == 200
    assert "Nov. 30, 2026, 12:03:05" in page.text  # created
    assert "Nov. 30, 2026, 12:03:07" in page.text  # started
    assert "Nov. 30, 2026, 12:07:12" in page.text  # finished
    columns = page.context["cl"].model_admin
    shown = sorted(columns.duration(operation) for operation in page.context["cl"].result_list)
    assert shown[:2] == ["-", "4 min 05 s"]
    assert shown[2].startswith("running for 12.")
    assert '<td class="field-duration">4 min 05 s</td>' in page.text


def test_changelist_sorts_operations_by_duration(admin_client):
    for seconds in (60, 5, 245):
        ended(
            started_at=timezone.now() - timedelta(seconds=seconds),
            finished_at=timezone.now(),
            message=f"took {seconds}",
        )
    column = admin_client.get(OPERATIONS).context["cl"].list_display.index("duration")

    shortest_first = admin_client.get(OPERATIONS, {"o": str(column)})
    longest_first = admin_client.get(OPERATIONS, {"o": f"-{column}"})

    def order(page) -> list[str]:
        return [operation.message for operation in page.context["cl"].result_list]

    assert order(shortest_first) == ["took 5", "took 60", "took 245"]
    assert order(longest_first) == ["took 245", "took 60", "took 5"]


def test_date_hierarchy_links_narrow_the_list_to_a_year(admin_client):
    old = ended(created_at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    new = ended(created_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))

    page = admin_client.get(OPERATIONS)
    year_2025 = admin_client.get(OPERATIONS, {"created_at__year": "2025"})

    assert '<nav class="toplinks"' in page.text
    assert "?created_at__year=2025" in page.text
    assert "?created_at__year=2026" in page.text
    assert set(page.context["cl"].result_list) == {old, new}
    assert list(year_2025.context["cl"].result_list) == [old]


def test_change_page_shows_params_and_result_as_indented_escaped_json(admin_client):
    params = {"duration": 1.0, "data": {"note": "<script>alert(1)</script>", "ok": "ü"}}
    result = {"processed_data": params["data"], "duration": 1.0}
    operation = ended(
        params=params,
        result=result,
        started_at=timezone.now() - timedelta(seconds=1.5),
    )

    page = admin_client.get(change_url(operation))

    assert page.status_code == 200
    assert escape(json.dumps(params, indent=2, ensure_ascii=False, sort_keys=True)) in page.text
    assert escape(json.dumps(result, indent=2, ensure_ascii=False, sort_keys=True)) in page.text
    assert "&quot;note&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in page.text
    assert "<script>alert(1)" not in page.text
    assert page.text.count('<pre style="white-space: pre-wrap; margin: 0">') == 2
    assert "1.5 s" in page.text


def test_change_page_shows_times_to_the_second(admin_client):
    operation = ended(
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        started_at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
        finished_at=datetime(2026, 1, 2, 3, 4, 18, 500000, tzinfo=UTC),
    )

    page = admin_client.get(change_url(operation))

    assert "Jan. 2, 2026, 03:04:05" in page.text
    assert "Jan. 2, 2026, 03:04:06" in page.text
    assert "Jan. 2, 2026, 03:04:18" in page.text
    assert "12.5 s" in page.text


def test_change_page_shows_a_dash_for_what_has_not_happened_yet(admin_client, start):
    queued = start()  # not started, no result, no duration

    page = admin_client.get(change_url(queued))

    assert page.status_code == 200
    assert '<div class="readonly">None</div>' not in page.text
    for field in ("result_json", "started", "finished", "duration"):
        shown = re.search(rf'field-{field}".*?<div class="readonly">(.*?)</div>', page.text, re.S)
        assert (field, shown[1]) == (field, "-")


def test_slot_changelist_shows_lease_times_to_the_second(admin_client):
    Slot.objects.filter(number=1).update(
        lease_expires_at=datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC),
        claimed_at=datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC),
    )

    page = admin_client.get(SLOTS)

    assert "Nov. 30, 2026, 12:00:30" in page.text
    assert "Nov. 30, 2026, 12:00:00" in page.text


def test_the_health_page_shows_each_check_and_why_it_failed(admin_client):
    page = admin_client.get(HEALTH)

    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert SITE_NAME in page.text
    for name in ("database", "cache", "workers"):
        assert f'<tr id="check-{name}">\n<th scope="row">{name}</th>' in page.text
    assert page.context["checks"]["database"] == {"status": "up"}
    assert page.context["checks"]["workers"]["status"] == "down"
    assert "<strong>Degraded</strong>: workers is down." in page.text
    assert "No worker has been seen in the last" in page.text
    assert "0 of 2 slots" in page.text
    assert 'href="/api/health"' in page.text
    assert "no-cache" in page["Cache-Control"]


def test_the_health_page_is_healthy_when_a_worker_beats(admin_client):
    beat("test-worker", threads=1)

    page = admin_client.get(HEALTH)

    assert page.status_code == 200
    assert "<strong>Healthy</strong>: every check passed." in page.text
    assert {check["status"] for check in page.context["checks"].values()} == {"up"}


def test_the_health_page_sends_users_who_are_not_staff_to_the_admins_sign_in(
    client, django_user_model
):
    anonymous = client.get(HEALTH)
    client.force_login(django_user_model.objects.create_user("ada"))
    signed_in = client.get(HEALTH)

    for response in (anonymous, signed_in):
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('admin:login')}?next={HEALTH}"


def test_staff_move_a_waiting_operation_to_the_front_and_it_is_served_next(admin_client, start):
    holder, _ = start(), start()
    first = admit("simulated", {}, client_key="ip:10.0.0.2", when_busy="wait")
    moved = admit("simulated", {}, client_key="ip:10.0.0.3", when_busy="wait")

    response = act(admin_client, OPERATIONS, "move_to_front", moved.pk, holder.pk)
    (hold,) = holds_of(holder.id)
    release(hold)

    assert ("success", "Moved 1 waiting operation to the front of the line.") in messages_of(
        response
    )
    assert ("warning", "1 operation was not waiting and was left as it was.") in messages_of(
        response
    )
    moved.refresh_from_db(), first.refresh_from_db()
    assert (moved.status, first.status) == (Status.QUEUED, Status.WAITING)
    entry = LogEntry.objects.get(object_id=str(moved.pk))
    assert entry.get_change_message() == "Moved to the front of the line in the admin."
