"""Starting operations over HTTP: one client's latency, and many clients racing for the limits."""

from __future__ import annotations

import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass

import httpx

from bench.servers import BenchError
from loadcheck.configuration import WINDOW_SECONDS
from loadcheck.timing import percentile

START_PATH = "/api/operations"
MINIMAL_PATH = "/bench/minimal"
TIMEOUT_SECONDS = 30.0


def start_body(duration: float) -> dict[str, object]:
    return {"kind": "simulated", "params": {"duration": duration}}


@dataclass(frozen=True)
class Latencies:
    """Milliseconds of admissions and of the minimal view, sampled alternately."""

    admissions: list[float]
    minimal: list[float]

    def p(self, percent: float) -> tuple[float, float]:
        return percentile(self.admissions, percent), percentile(self.minimal, percent)


def admission_latency(url: str, samples: int, warmup: int) -> Latencies:
    """Alternate a start (which must answer 202) and a minimal GET, one request at a time."""
    admissions: list[float] = []
    minimal: list[float] = []
    body = start_body(0.05)
    with httpx.Client(base_url=url, timeout=TIMEOUT_SECONDS) as client:
        for number in range(warmup + samples):
            started = time.perf_counter()
            response = client.post(START_PATH, json=body)
            admitted = time.perf_counter() - started
            if response.status_code != 202:
                raise BenchError(
                    f"POST {START_PATH} answered {response.status_code}: {response.text[:200]}"
                )
            started = time.perf_counter()
            response = client.get(MINIMAL_PATH)
            answered = time.perf_counter() - started
            if response.status_code != 200:
                raise BenchError(f"GET {MINIMAL_PATH} answered {response.status_code}.")
            if number >= warmup:
                admissions.append(admitted * 1000)
                minimal.append(answered * 1000)
    return Latencies(admissions, minimal)


@dataclass(frozen=True)
class Race:
    """What a burst of concurrent starts was answered."""

    attempts: int
    outcomes: Counter[str]  # "202", "429 concurrency_limit", "503 database_unavailable", ...

    @property
    def admitted(self) -> int:
        return self.outcomes["202"]

    def breakdown(self) -> str:
        return ", ".join(f"{outcome} x{count}" for outcome, count in sorted(self.outcomes.items()))


def race(urls: list[str], clients: int, attempts: int, duration: float) -> Race:
    """Have `clients` threads, spread over `urls`, each send `attempts` starts at one moment."""
    barrier = threading.Barrier(clients)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    body = start_body(duration)

    def client(number: int) -> None:
        with httpx.Client(base_url=urls[number % len(urls)], timeout=TIMEOUT_SECONDS) as http:
            http.get(MINIMAL_PATH)  # connect before the start line, not during the race
            barrier.wait()
            for _ in range(attempts):
                try:
                    response = http.post(START_PATH, json=body)
                    outcome = str(response.status_code)
                    if response.status_code != 202:
                        code = response.json().get("error", "") if response.content else ""
                        outcome = f"{outcome} {code}".strip()
                except (httpx.HTTPError, ValueError) as exc:
                    outcome = type(exc).__name__
                with lock:
                    outcomes[outcome] += 1

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Race(clients * attempts, outcomes)


def operation_rows(url: str) -> int:
    """How many operations the database holds (the API lists up to 50, newest first)."""
    response = httpx.get(f"{url}{START_PATH}", timeout=TIMEOUT_SECONDS)
    if response.status_code != 200:
        raise BenchError(f"GET {START_PATH} answered {response.status_code}.")
    return len(response.json()["operations"])


def seconds_left_in_window(client_key: str) -> int:
    """Seconds until the client's one-minute start window ends.

    django-ratelimit offsets each key's window by crc32(key) % period, so that not
    every client's budget renews at the same second.
    """
    now = int(time.time())
    end = now - now % WINDOW_SECONDS + zlib.crc32(client_key.encode()) % WINDOW_SECONDS
    if end < now:
        end += WINDOW_SECONDS
    return end - now


def wait_for_room_in_window(client_key: str, needed_seconds: int) -> None:
    """Sleep into the next window unless this one has `needed_seconds` left, so a burst fits."""
    left = seconds_left_in_window(client_key)
    if left < needed_seconds:
        time.sleep(left + 1.5)
