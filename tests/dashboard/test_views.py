from __future__ import annotations

import pytest

from dashboard.state import CONTENT_HEADER, STATE_HEADER
from operations.admission import admit
from operations.models import Operation, Slot, Status

pytestmark = pytest.mark.django_db

CONTENT = CONTENT_HEADER
STATE = STATE_HEADER


@pytest.fixture(autouse=True)
def limits(configure):
    configure(
        max_concurrent_operations=2,
        enable_rate_limiting=True,
        requests_per_minute=3,
        allow_anonymous=True,
    )


def test_page_carries_the_polling_configuration_and_the_live_region(client):
    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-tab-role="follower"' in html
    for attribute in (
        # 5 s growing by 1.2 up to 30 s: the one ladder, computed by the server.
        'data-poll-ladder-ms="5000,6000,7200,8640,10368,12442,14930,17916,21499,25799,30000"',
        'data-poll-max-attempts="100"',
        'data-tabs-heartbeat-ms="3000"',
        'data-tabs-timeout-ms="10000"',
    ):
        assert attribute in html
    assert 'id="live"' in html
    assert "/static/django_htmx/htmx-2.min.js" in html
    assert "/static/dashboard/dashboard.js" in html


def test_page_is_served_under_a_strict_script_policy(client):
    policy = client.get("/")["Content-Security-Policy"]

    script_src = next(part for part in policy.split(";") if "script-src" in part)
    assert script_src.strip() == "script-src 'self'"
    assert "unsafe-eval" not in policy


def test_live_fragment_shows_slots_budget_and_operations(client):
    operation = admit("simulated", {"duration": 9}, client_key="ip:127.0.0.1")

    response = client.get("/dashboard/live/")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="live"')
    assert "1 / 2" in html
    assert operation.short_id in html
    assert "<strong>3</strong> of 3 starts left" in html
    assert "Cancel" in html
    assert len(response[STATE]) == len(response[CONTENT]) == 16


def test_a_poll_for_content_the_client_holds_is_a_cheap_204(client):
    admit("simulated", {})
    first = client.get("/dashboard/live/")

    again = client.get("/dashboard/live/", headers={CONTENT: first[CONTENT]})

    assert again.status_code == 204
    assert again.content == b""
    assert again[STATE] == first[STATE]


def test_progress_changes_content_but_not_state(client):
    operation = admit("simulated", {})
    Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING)
    before = client.get("/dashboard/live/")

    Operation.objects.filter(pk=operation.pk).update(progress=40)
    after = client.get("/dashboard/live/", headers={CONTENT: before[CONTENT]})

    assert after.status_code == 200
    assert after[STATE] == before[STATE]
    assert after[CONTENT] != before[CONTENT]


def test_a_status_change_changes_the_state_version(client):
    operation = admit("simulated", {})
    before = client.get("/dashboard/live/")

    Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING)

    assert client.get("/dashboard/live/")[STATE] != before[STATE]


def test_starting_from_the_form_admits_through_the_same_limits(client):
    response = client.post("/dashboard/start/", {"kind": "simulated", "duration": "3"})

    assert response.status_code == 201
    assert response["HX-Trigger"] == "coordhub:changed"
    assert "Started" in response.content.decode()
    assert Operation.objects.get().params == {"duration": 3.0, "fail": False}


def test_bad_form_values_are_explained_next_to_the_field(client):
    response = client.post("/dashboard/start/", {"kind": "simulated", "duration": "0"})

    html = response.content.decode()
    assert response.status_code == 400
    assert "greater than or equal to 0.001" in html
    assert 'class="field invalid"' in html
    assert not Operation.objects.exists()


def test_rate_limited_form_shows_a_countdown(client, configure):
    configure(max_concurrent_operations=10)
    for _ in range(3):
        client.post("/dashboard/start/", {"kind": "simulated", "duration": "1"})

    response = client.post("/dashboard/start/", {"kind": "simulated", "duration": "1"})

    assert response.status_code == 429
    assert "data-countdown=" in response.content.decode()
    assert Operation.objects.count() == 3


def test_a_form_sent_back_with_errors_spends_no_start(client, configure):
    configure(max_concurrent_operations=10)
    for _ in range(5):
        assert client.post("/dashboard/start/", {"duration": "0"}).status_code == 400

    answers = [client.post("/dashboard/start/", {"duration": "1"}) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [201, 201, 201, 429]


def test_the_attempt_limit_is_answered_in_the_form(client, configure):
    configure(start_attempts_per_minute=2)
    client.post("/dashboard/start/", {"duration": "0"})
    client.post("/dashboard/start/", {"duration": "0"})

    response = client.post("/dashboard/start/", {"duration": "1"})

    html = response.content.decode()
    assert response.status_code == 429
    assert 'id="start-form"' in html
    assert "Start limit reached: you can start again in" in html
    assert not Operation.objects.exists()


def test_busy_slots_show_inline_with_a_countdown(client):
    for _ in range(2):
        client.post("/dashboard/start/", {"kind": "simulated", "duration": "1"})

    response = client.post("/dashboard/start/", {"kind": "simulated", "duration": "1"})

    assert response.status_code == 429
    assert (  # two queued holders of a kind with no completed operation: the default, 30 s
        "All slots are busy: a slot is expected to free in about "
        '<span data-countdown="30">30</span> s.'
    ) in response.content.decode()
    assert Slot.objects.held().count() == 2


def test_cancel_from_the_dashboard_answers_with_the_live_region(client):
    operation = admit("simulated", {}, client_key="ip:127.0.0.1")

    response = client.post(f"/dashboard/operations/{operation.id}/cancel/")

    assert response.status_code == 200
    assert 'data-status="cancelled"' in response.content.decode()
    assert "Cancelled before it started." in response.content.decode()


def test_cancel_of_another_clients_operation_is_refused(client):
    operation = admit("simulated", {}, client_key="ip:10.9.9.9")

    response = client.post(f"/dashboard/operations/{operation.id}/cancel/")

    assert response.status_code == 403
    assert Operation.objects.get(pk=operation.pk).status == Status.QUEUED


def failed_operation(client_key: str) -> Operation:
    operation = admit(
        "simulated", {"duration": 9, "data": {"token": "s3cret-param"}}, client_key=client_key
    )
    Operation.objects.filter(pk=operation.pk).update(
        status=Status.FAILED, error="Vendor refused s3cret-reason.", message="step 1 of 9"
    )
    return operation


def test_another_clients_row_shows_neither_its_reason_nor_its_params(client):
    operation = failed_operation("ip:10.9.9.9")

    for path in ("/dashboard/live/", "/"):
        html = client.get(path).content.decode()
        assert operation.short_id in html
        assert "step 1 of 9" in html
        assert "s3cret" not in html


def test_the_owner_sees_the_reason_for_a_failure(client):
    failed_operation("ip:127.0.0.1")

    html = client.get("/dashboard/live/").content.decode()

    assert '<span class="reason">Vendor refused s3cret-reason.</span>' in html
    assert "s3cret-param" not in html


def test_only_the_owners_rows_offer_a_cancel_button(client):
    admit("simulated", {"duration": 9}, client_key="ip:10.9.9.9")

    assert "Cancel" not in client.get("/dashboard/live/").content.decode()


def test_sign_in_is_required_where_anonymous_use_is_off(client, configure, django_user_model):
    configure(allow_anonymous=False)

    assert client.get("/")["Location"] == "/accounts/login/?next=/"
    assert client.get("/dashboard/live/")["Location"] == "/accounts/login/?next=/dashboard/live/"
    client.force_login(django_user_model.objects.create_user("ada", password="x" * 12))
    assert client.get("/").status_code == 200


def test_json_the_databases_cannot_store_is_explained_in_the_form(client):
    response = client.post("/dashboard/start/", {"duration": "1", "data": '{"x": NaN}'})

    assert response.status_code == 400
    assert "Enter a valid JSON." in response.content.decode()
    assert not Operation.objects.exists()


@pytest.mark.parametrize("path", ["/", "/dashboard/live/", "/dashboard/form/"])
def test_dashboard_pages_answer_head_as_get(client, path):
    assert client.head(path).status_code == 200
    assert not Operation.objects.exists()


def test_each_fields_help_text_and_errors_are_the_ones_it_is_described_by(client):
    response = client.post("/dashboard/start/", {"kind": "simulated", "duration": "-1"})

    html = response.content.decode()
    assert response.status_code == 400
    assert 'aria-describedby="id_duration_helptext id_duration_error"' in html
    assert '<small class="hint" id="id_duration_helptext">Seconds of simulated work' in html
    assert '<div id="id_duration_error"><p class="error" role="alert">Ensure this value' in html
    assert 'aria-describedby="id_fail_helptext"' in html
    assert 'id="id_fail_helptext"' in html


def test_the_form_offers_to_wait_for_a_free_slot_ticked_by_default(client):
    html = client.get("/").content.decode()

    assert (
        '<input type="checkbox" name="when_busy" value="wait" checked '
        'aria-describedby="when-busy-hint"> Wait for a free slot'
    ) in html


def test_a_start_that_waits_says_so_and_shows_in_the_line_with_its_place(client):
    for _ in range(2):
        client.post("/dashboard/start/", {"kind": "simulated", "duration": "1"})

    response = client.post(
        "/dashboard/start/", {"kind": "simulated", "duration": "1", "when_busy": "wait"}
    )
    waiting = Operation.objects.get(status=Status.WAITING)
    live = client.get("/dashboard/live/").content.decode()

    assert response.status_code == 201
    assert "waits in line and starts when a slot frees" in response.content.decode()
    assert 'data-testid="line-length">1<' in live
    assert f'aria-label="Operation {waiting.short_id}">{waiting.short_id}</a>' in live
    assert '<span class="client">yours</span>' in live
    assert "starts in about 30 s" in live  # the default duration: none completed yet


def test_another_clients_waiting_operation_is_not_called_yours(client):
    admit("simulated", {}, client_key="ip:a"), admit("simulated", {}, client_key="ip:b")
    admit("simulated", {}, client_key="ip:c", when_busy="wait")

    live = client.get("/dashboard/live/").content.decode()

    assert '<span class="client">another client\'s</span>' in live
    assert "ip:c" not in live


def test_a_client_at_its_share_is_told_so_in_the_form(client, configure):
    configure(max_slots_per_client=1)
    client.post("/dashboard/start/", {"kind": "simulated", "duration": "1"})

    response = client.post("/dashboard/start/", {"kind": "simulated", "duration": "1"})
    live = client.get("/dashboard/live/").content.decode()

    assert response.status_code == 429
    assert "This client already holds 1 of the slots" in response.content.decode()
    assert "You hold <strong>1</strong> of the 1 slot one client may hold at once." in live


def test_staff_see_each_clients_share_and_others_only_their_own(client, admin_client, configure):
    configure(max_concurrent_operations=3, max_slots_per_client=2)
    admit("simulated", {}, client_key="ip:192.0.2.1")
    admit("simulated", {}, client_key="ip:192.0.2.1")
    admit("simulated", {}, client_key="ip:192.0.2.2")

    staff = admin_client.get("/dashboard/live/").content.decode()
    anyone = client.get("/dashboard/live/").content.decode()

    assert '<li><span class="mono">ip:192.0.2.1</span> holds 2 of 2</li>' in staff
    assert '<li><span class="mono">ip:192.0.2.2</span> holds 1 of 2</li>' in staff
    assert 'data-testid="shares"' not in anyone
    assert "192.0.2" not in anyone


def test_the_line_changing_changes_the_state_version_and_waiting_rows_leave_the_table(client):
    from operations import line

    admit("simulated", {}, client_key="ip:a"), admit("simulated", {}, client_key="ip:b")
    first = client.get("/dashboard/live/")[STATE]
    waiting = admit("simulated", {}, client_key="ip:c", when_busy="wait")
    joined = client.get("/dashboard/live/")
    behind = admit("simulated", {}, client_key="ip:d", when_busy="wait")
    client.get("/dashboard/live/")
    before_move = client.get("/dashboard/live/")[STATE]
    line.move_to_front(Operation.objects.filter(pk=behind.pk))
    moved = client.get("/dashboard/live/")[STATE]

    assert len({first, joined[STATE], before_move, moved}) == 4
    assert f'id="op-{waiting.id}"' not in joined.content.decode()  # in the line's panel only
