"""Property-based fuzz of the API against its OpenAPI description, on a live daphne.

schemathesis generates requests from `api/openapi.yaml`, valid and invalid, and
checks every answer: never a 5xx, its status, content type, headers and body as
described. Operations are counted in the server's database: only a 202 creates
one, so the rows must equal the 202s. Hand-written cases cover what generators
rarely reach: non-finite numbers, huge integers, deep nesting, lone surrogates,
oversized headers.
"""

from __future__ import annotations

import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.schema import DESCRIPTION
from tests.live import LiveServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Per operation and mode; an operation with nothing to vary is sent once. About 400 requests.
EXAMPLES = 40
GENEROUS = "100000"
OVERSIZED_HEADER_BYTES = 64 * 1024
DEEP = 100  # nesting levels; the API refuses beyond 64


class Fuzzed:
    """A live server and what was sent to it."""

    def __init__(self, server: LiveServer, database: Path) -> None:
        self.server, self.database = server, database
        self.statuses: Counter[int] = Counter()

    def operations(self) -> int:
        """Count the operation rows in the server's own database."""
        with sqlite3.connect(self.database) as connection:
            return connection.execute("SELECT COUNT(*) FROM operations_operation").fetchone()[0]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    directory = tmp_path_factory.mktemp("fuzz")
    server = LiveServer(
        directory,
        REQUESTS_PER_MINUTE=GENEROUS,
        READ_REQUESTS_PER_MINUTE=GENEROUS,
        START_ATTEMPTS_PER_MINUTE=GENEROUS,
        MAX_CONCURRENT_OPERATIONS="2",
        # The templates' starts answer at once (202): waiting has tests of its own.
        TEMPLATES_WAIT_SECONDS="0",
    ).start()
    try:
        yield Fuzzed(server, directory / "db.sqlite3")
    finally:
        server.stop()


def fuzz(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode, target: Fuzzed):
    """Send EXAMPLES generated cases of `operation` and check each answer."""

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: schemathesis.Case) -> None:
        response = case.call(base_url=target.server.url, timeout=30)
        target.statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    send()


def modes(operation: schemathesis.APIOperation) -> list[schemathesis.GenerationMode]:
    """Valid cases for every operation; invalid ones where there is a body or path to spoil."""
    spoilable = bool(operation.body) or bool(operation.path_parameters)
    negative = [schemathesis.GenerationMode.NEGATIVE] if spoilable else []
    return [schemathesis.GenerationMode.POSITIVE, *negative]


def test_generated_requests_get_described_answers_and_only_a_202_creates_an_operation(
    fuzzed: Fuzzed,
):
    schema = schemathesis.openapi.from_path(DESCRIPTION)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in modes(operation):
            fuzz(operation, mode, fuzzed)

    print(f"fuzz: {fuzzed.statuses.total()} requests, statuses {sorted(fuzzed.statuses.items())}")
    assert fuzzed.statuses.total() >= 300
    assert not [status for status in fuzzed.statuses if status >= 500]
    assert fuzzed.operations() == fuzzed.statuses[202]


def strict_json_refusals() -> list[tuple[str, str]]:
    """Bodies the API must refuse with 400 invalid_json, as raw text."""
    deep = "[" * DEEP + "]" * DEEP
    return [
        ("NaN", '{"kind": "simulated", "params": {"duration": NaN}}'),
        ("Infinity", '{"kind": "simulated", "params": {"duration": Infinity}}'),
        ("-Infinity", '{"task": -Infinity}'),
        ("1e999", '{"kind": "simulated", "params": {"duration": 1e999}}'),
        ("huge integer", '{"task": ' + "9" * 40 + "}"),
        ("deep nesting", '{"kind": "simulated", "params": {"data": {"x": ' + deep + "}}}"),
        ("lone surrogate", '{"task": "\\ud800"}'),
        ("lone low surrogate", '{"kind": "simulated", "params": {"data": {"\\udc00": 1}}}'),
    ]


@pytest.mark.parametrize("path", ["/api/operations", "/api/protected-operation"])
@pytest.mark.parametrize(("case", "body"), strict_json_refusals())
def test_bodies_json_cannot_hold_are_refused_and_create_nothing(fuzzed, path, case, body):
    before = fuzzed.operations()

    response = httpx.post(
        f"{fuzzed.server.url}{path}",
        content=body.encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    fuzzed.statuses[response.status_code] += 1
    assert (response.status_code, response.json()["error"]) == (400, "invalid_json"), case
    assert fuzzed.operations() == before


@pytest.mark.parametrize("path", ["/api/operations", "/api/health"])
def test_a_64_kib_header_is_refused_or_closed_never_a_server_error(fuzzed, path):
    padding = "a" * OVERSIZED_HEADER_BYTES
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{fuzzed.server.port}\r\n"
        f"X-Padding: {padding}\r\nConnection: close\r\n\r\n"
    )

    line = status_line(fuzzed.server.port, request.encode())

    assert line == "" or 400 <= int(line.split()[1]) < 500, line
    assert fuzzed.server.ready()  # and the server goes on answering


def test_head_through_daphne_has_get_headers_and_no_body(fuzzed):
    url = f"{fuzzed.server.url}/api/operations"

    got, head = httpx.get(url), httpx.head(url)

    assert head.status_code == got.status_code == 200
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert head.content == b""


def status_line(port: int, request: bytes) -> str:
    """Send `request` raw; return the answer's status line, "" if the server closed instead."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        try:
            connection.sendall(request)
            answer = connection.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            return ""
    return answer.split(b"\r\n", 1)[0].decode()


def test_the_fuzz_server_logged_no_traceback(fuzzed):
    assert "Traceback" not in fuzzed.server.output()
