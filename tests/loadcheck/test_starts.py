"""Starting operations and counting the answers."""

from __future__ import annotations

from loadcheck.starts import StartAnswer, Starts, tally
from tests.loadcheck.fakes import admit_first, fake_deployment


def test_tally_counts_admissions_refusals_and_the_unexpected():
    answers = [
        StartAnswer(202, None, operation_id="a"),
        StartAnswer(429, "rate_limited", 3),
        StartAnswer(429, "concurrency_limit", None),
        StartAnswer(500, "internal_error"),
        StartAnswer(None, "connection refused"),
    ]

    counts = tally(answers)

    assert counts == {
        "sent": 5,
        "admitted": 1,
        "rate_limited": 1,
        "concurrency_limit": 1,
        "rate_limited_retry_after": [3],
        "concurrency_limit_retry_after": [None],
        "unexpected": ["500 internal_error", "no answer: connection refused"],
    }


def test_every_admitted_start_is_cancelled_once():
    starts = Starts(fake_deployment(answer=admit_first(2)))

    answers = [starts.start(0.1) for _ in range(3)]

    assert [answer.status for answer in answers] == [202, 202, 429]
    assert starts.cancel_all() == {"cancelled": 2, "already_finished": 0, "not_cancelled": []}
    assert starts.cancel_all()["cancelled"] == 0
