#!/usr/bin/env python
"""`make bench`: coordhub's benchmarks, each figure a ratio to a baseline measured in the same run.

Starts throwaway PostgreSQL and Redis and coordhub servers on loopback, measures,
prints one table and stops everything, also on Ctrl-C or error. Exits 0 when every
measurement ran, whether or not it met its target (benchmarks report; tests
assert), and 1 when one could not run.

    python bench/run.py             # about 11 minutes (section 9 alone: 4, section 10: 1.5)
    python bench/run.py --quick     # a smoke run of about 3 minutes, without the fault scenarios
    python bench/run.py --only 10   # one section (set-up included)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: bench/ itself is sys.path[0]

from bench import admission, faults, history, line, live, polling, throughput  # noqa: E402
from bench.load import LoadGenerator  # noqa: E402
from bench.servers import (  # noqa: E402
    UNLIMITED,
    BenchError,
    Databases,
    Stack,
    environment,
    run_manage,
)
from bench.table import Row, at_least, at_most, exactly, failed, render  # noqa: E402
from coordhub.testing.processes import WebServer, wait_until_ready  # noqa: E402

SLOT_LIMIT = 5
CLIENT_KEY = "ip:127.0.0.1"  # every benchmark client is loopback, so one client to the limits
WORKER_THREADS = 4
LONG_SECONDS = 600.0  # race starts: still holding their slots when the race ends
LIVE_PATH = "/dashboard/live/"
CONTENT_HEADER = "X-Coordhub-Content"
GUNICORN_LABEL = "gunicorn (WSGI, 2 sync workers)"
SEED_OPERATION = (
    "from operations.admission import admit; "
    f"print(admit('simulated', {{'duration': 600}}, client_key={CLIENT_KEY!r}).id)"
)


@dataclass(frozen=True)
class Budget:
    """How long each measurement runs."""

    rounds: int  # of each bracketed throughput sequence
    seconds: int  # per throughput run (wrk counts whole seconds)
    warmup: int  # seconds per endpoint before the first round
    latency_samples: int  # timed starts per database
    latency_warmup: int
    race_clients: int  # concurrent clients starting against SLOT_LIMIT slots
    race_attempts: int  # starts per client
    burst_limit: int  # starts per minute for the rate-limit burst of 3x as many
    history_requests: int  # per run of each read, 5 runs at each history size


DEFAULT = Budget(8, 2, 1, 300, 20, 40, 3, 20, 100)
QUICK = Budget(1, 1, 1, 60, 10, 16, 2, 10, 10)


BEGAN = time.monotonic()


def progress(message: str) -> None:
    print(f"-- {time.monotonic() - BEGAN:5.1f} s  {message}", file=sys.stderr, flush=True)


class Run:
    """One benchmark run: its processes, databases, load generator and rows."""

    def __init__(
        self,
        stack: Stack,
        budget: Budget,
        live_budget: live.Budget,
        line_budget: line.Budget,
        client: str,
        only: str = "",
    ) -> None:
        self.stack = stack
        self.budget = budget
        self.live_budget = live_budget
        self.line_budget = line_budget
        self.client = client
        self.only = only  # a section's number: run that one alone (and the set-up)
        self.databases = Databases(stack)
        self.load: LoadGenerator | None = None
        self.rows: list[Row] = []
        self.service_errors: dict[str, str] = {}

    # Set-up

    def start_services(self) -> list[Row]:
        """Start Redis and PostgreSQL (a failure fails only what needs them), migrate templates."""
        services = (("Redis", self.stack.start_redis), ("PostgreSQL", self.stack.start_postgres))
        for name, start in services:
            progress(f"starting {name}")
            try:
                start()
            except Exception as exc:
                self.service_errors[name] = f"{name} could not start: {exc}"
                progress(self.service_errors[name])
        progress("migrating the template databases")
        self.databases.migrate_templates(with_postgres="PostgreSQL" not in self.service_errors)
        self.load = LoadGenerator(self.stack.directory, self.client)
        return []

    def redis_url(self) -> str:
        if self.stack.redis is None or "Redis" in self.service_errors:
            raise BenchError(self.service_errors.get("Redis", "Redis is not running."))
        return self.stack.redis.url

    def postgres(self, name: str) -> str:
        if self.stack.postgres is None or "PostgreSQL" in self.service_errors:
            raise BenchError(self.service_errors.get("PostgreSQL", "PostgreSQL is not running."))
        return self.databases.postgres(name)

    def section(self, names: list[str], measure: Callable[[], list[Row]]) -> None:
        """Run one group of measurements; if it fails, report each of `names` as failed."""
        if not any(self.wanted(name) for name in names):  # --only 4 runs 1/4/5 together
            return
        try:
            self.rows += measure()
        except Exception as exc:
            print(traceback.format_exc(), file=sys.stderr)
            self.rows += [failed(name, exc) for name in names]

    def wanted(self, name: str) -> bool:
        """Whether the measurement `name` ("3. ...") runs: all do, unless --only names another."""
        return not self.only or name == "set-up" or name.startswith(f"{self.only}.")

    # 1, 4, 5: throughput

    def reads_and_servers(self) -> list[Row]:
        """Reads against /bench/minimal, the rate-limit check, and the three web servers."""
        progress("throughput: starting servers")
        limits = {
            "ENABLE_RATE_LIMITING": "true",
            "READ_REQUESTS_PER_MINUTE": UNLIMITED,
            "REQUESTS_PER_MINUTE": UNLIMITED,
            "START_ATTEMPTS_PER_MINUTE": UNLIMITED,
            "MAX_CONCURRENT_OPERATIONS": str(SLOT_LIMIT),
        }
        env = environment(DATABASE_URL=self.databases.sqlite("reads"), **limits)
        # Created outside the server, so no start is spent and the start budget the live
        # region shows stays the same, and with no worker it stays queued: an unchanged poll.
        seeded = run_manage(["shell", "-c", SEED_OPERATION], env)
        operation_id = seeded.strip().splitlines()[-1]
        webs = {"daphne": self.stack.start_web("reads-daphne", "daphne", env)}
        missing = {}
        for server in ("uvicorn", "gunicorn"):
            if importlib.util.find_spec(server) is None:
                missing[server] = f"skipped: {server} is not installed"
            else:
                webs[server] = self.stack.start_web(f"reads-{server}", server, env)
        redis_web: WebServer | None = None
        redis_problem = ""
        try:
            redis_env = env | {"REDIS_URL": self.redis_url()}
            redis_web = self.stack.start_web("reads-daphne-redis", "daphne", redis_env)
        except BenchError as exc:
            redis_problem = str(exc)
        started = [*webs.values(), *([redis_web] if redis_web else [])]
        try:
            wait_until_ready(*started)
            results = self.drive(webs, redis_web, operation_id)
        finally:
            self.stack.stop(*started)
        return throughput_rows(results, missing, redis_problem)

    def drive(
        self, webs: dict[str, WebServer], redis_web: WebServer | None, operation_id: str
    ) -> throughput.Results:
        assert self.load is not None
        daphne = webs["daphne"].url
        first = first_poll(f"{daphne}{LIVE_PATH}")
        minimal = throughput.Endpoint(
            "minimal", "/bench/minimal (daphne)", f"{daphne}/bench/minimal"
        )
        reads = [
            throughput.Endpoint(
                "operation", "GET /api/operations/<id>", f"{daphne}/api/operations/{operation_id}"
            ),
            throughput.Endpoint(
                "live-204",
                "unchanged poll",
                f"{daphne}{LIVE_PATH}",
                expect=204,
                headers={CONTENT_HEADER: first.headers[CONTENT_HEADER]},
            ),
        ]
        servers = [
            throughput.Endpoint(f"{server}-minimal", server, f"{webs[server].url}/bench/minimal")
            for server in ("uvicorn", "gunicorn")
            if server in webs
        ]
        comparisons = [throughput.Comparison(minimal, reads + servers)]
        caches = [("locmem", daphne)] + ([("redis", redis_web.url)] if redis_web else [])
        for cache, url in caches:
            comparisons.append(
                throughput.Comparison(
                    throughput.Endpoint(
                        f"unlimited-{cache}", "/bench/unlimited", f"{url}/bench/unlimited"
                    ),
                    [
                        throughput.Endpoint(
                            f"limited-{cache}", "/bench/limited", f"{url}/bench/limited"
                        )
                    ],
                )
            )
        budget = self.budget
        runs = sum(2 * len(comparison.targets) + 1 for comparison in comparisons)
        progress(
            f"throughput: {runs} runs x {budget.rounds} round(s) x {budget.seconds} s "
            f"with {self.load.name}"
        )
        return throughput.measure(
            self.load, comparisons, budget.rounds, budget.seconds, budget.warmup
        )

    # 2: admission latency

    def admission_latency(self, mode: str) -> list[Row]:
        progress(f"admission latency, {mode}: starting daphne and a worker")
        limits = {
            "ENABLE_RATE_LIMITING": "true",
            "REQUESTS_PER_MINUTE": UNLIMITED,
            "START_ATTEMPTS_PER_MINUTE": UNLIMITED,
            "READ_REQUESTS_PER_MINUTE": UNLIMITED,
            "MAX_CONCURRENT_OPERATIONS": "1000",
        }
        if mode == "SQLite":
            env = environment(DATABASE_URL=self.databases.sqlite("admission"), **limits)
        else:
            database = self.postgres("admission")
            env = environment(DATABASE_URL=database, REDIS_URL=self.redis_url(), **limits)
        web = self.stack.start_web(f"admission-{mode}", "daphne", env)
        worker = self.stack.start_worker(f"worker-{mode}", env, WORKER_THREADS)
        try:
            wait_until_ready(web)
            progress(
                f"admission latency, {mode}: {self.budget.latency_samples} starts "
                "alternating with GET /bench/minimal"
            )
            latencies = admission.admission_latency(
                web.url, self.budget.latency_samples, self.budget.latency_warmup
            )
            if worker.process.poll() is not None:
                raise BenchError(f"The worker exited during the run:\n{worker.log_tail()}")
        finally:
            self.stack.stop(web, worker)
        rows = []
        for percent, target in ((50, at_most(3.0)), (99, None)):
            start, minimal = latencies.p(percent)
            rows.append(
                Row(
                    f"2. POST /api/operations -> 202 p{percent}, {mode} (worker running)",
                    f"{start:.1f} ms",
                    f"/bench/minimal p{percent} {minimal:.1f} ms",
                    start / minimal,
                    target,
                )
            )
        return rows

    # 3: over-admission under contention

    def contention(self) -> list[Row]:
        budget = self.budget
        slots = {
            "ENABLE_RATE_LIMITING": "false",  # isolate the slot table
            "MAX_CONCURRENT_OPERATIONS": str(SLOT_LIMIT),
        }
        rate = {
            "ENABLE_RATE_LIMITING": "true",
            "REQUESTS_PER_MINUTE": str(budget.burst_limit),
            "START_ATTEMPTS_PER_MINUTE": UNLIMITED,
            "READ_REQUESTS_PER_MINUTE": UNLIMITED,
            "MAX_CONCURRENT_OPERATIONS": "1000",
        }
        scenarios: list[tuple[str, str, dict[str, str], int]] = []
        scenarios.append(("slots-sqlite", "sqlite", slots, 2))
        scenarios.append(("slots-postgres", "postgres", slots, 2))
        scenarios.append(("rate-locmem", "sqlite", rate, 1))
        scenarios.append(("rate-redis", "postgres", rate, 2))
        progress("contention: starting daphne processes")
        servers: dict[str, list[WebServer] | BenchError] = {}
        for name, engine, limits, processes in scenarios:
            try:
                if engine == "sqlite":
                    env = environment(DATABASE_URL=self.databases.sqlite(name), **limits)
                else:
                    env = environment(
                        DATABASE_URL=self.postgres(name.replace("-", "_")),
                        REDIS_URL=self.redis_url(),
                        WEB_CONCURRENCY=str(processes),
                        **limits,
                    )
                servers[name] = [
                    self.stack.start_web(f"{name}-{n}", "daphne", env) for n in range(processes)
                ]
            except BenchError as exc:
                servers[name] = exc
        started = [web for webs in servers.values() if isinstance(webs, list) for web in webs]
        try:
            wait_until_ready(*started)
            return self.races(servers)
        finally:
            self.stack.stop(*started)

    def races(self, servers: dict[str, list[WebServer] | BenchError]) -> list[Row]:
        budget = self.budget
        rows = []
        for name, label in (
            ("slots-sqlite", "SQLite"),
            ("slots-postgres", "PostgreSQL"),
        ):
            measurement = (
                f"3. slots: admitted under contention, {label} "
                f"({budget.race_clients} clients x {budget.race_attempts}, 2 processes)"
            )
            rows.append(self.slot_race(measurement, servers[name]))
        for name, label in (
            ("rate-locmem", "SQLite + local memory, 1 process"),
            ("rate-redis", "PostgreSQL + Redis, 2 processes"),
        ):
            measurement = (
                f"3. rate limit: admitted from a burst of {3 * budget.burst_limit}, {label}"
            )
            rows.append(self.rate_burst(measurement, servers[name]))
        return rows

    def slot_race(self, measurement: str, webs: list[WebServer] | BenchError) -> Row:
        if isinstance(webs, BenchError):
            return failed(measurement, webs)
        budget = self.budget
        progress(f"contention: {measurement}")
        urls = [web.url for web in webs]
        race = admission.race(urls, budget.race_clients, budget.race_attempts, LONG_SECONDS)
        rows_held = admission.operation_rows(urls[0])
        return Row(
            measurement,
            f"{race.admitted} of {race.attempts} starts; {rows_held} rows ({race.breakdown()})",
            f"limit {SLOT_LIMIT} slots",
            race.admitted / SLOT_LIMIT,
            exactly(1.0),
        )

    def rate_burst(self, measurement: str, webs: list[WebServer] | BenchError) -> Row:
        if isinstance(webs, BenchError):
            return failed(measurement, webs)
        limit = self.budget.burst_limit
        progress(f"contention: {measurement}")
        admission.wait_for_room_in_window(CLIENT_KEY, needed_seconds=10)
        urls = [web.url for web in webs]
        race = admission.race(urls, 3 * limit, 1, 0.05)
        return Row(
            measurement,
            f"{race.admitted} of {race.attempts} ({race.breakdown()})",
            f"limit {limit}/min",
            race.admitted / limit,
            exactly(1.0),
        )


def throughput_rows(
    results: throughput.Results, missing: dict[str, str], redis_problem: str
) -> list[Row]:
    """Rows 1, 4 and 5 from the interleaved throughput runs."""
    rows = [
        results.row(
            "1. GET /api/operations/<id> vs /bench/minimal (daphne, SQLite)",
            "operation",
            "minimal",
            at_least(0.6),
        ),
        results.row(
            "1. GET /dashboard/live/ unchanged (204) vs /bench/minimal",
            "live-204",
            "minimal",
            at_least(0.7),
        ),
        results.row(
            "4. rate-limit check, local memory: /bench/limited vs /bench/unlimited",
            "limited-locmem",
            "unlimited-locmem",
            at_least(0.95),
        ),
    ]
    redis_check = "4. rate-limit check, Redis: /bench/limited vs /bench/unlimited"
    if not redis_problem:
        rows.append(results.row(redis_check, "limited-redis", "unlimited-redis", at_least(0.9)))
    else:
        rows.append(failed(redis_check, BenchError(redis_problem)))
    for server, label in (("uvicorn", "uvicorn (ASGI)"), ("gunicorn", GUNICORN_LABEL)):
        measurement = f"5. /bench/minimal under {label} vs daphne"
        if server in missing:
            rows.append(Row(measurement, missing[server]))
        else:
            rows.append(results.row(measurement, f"{server}-minimal", "minimal", None))
    return rows


def first_poll(url: str) -> httpx.Response:
    """GET the live region once, for the content version an unchanged poll sends back."""
    response = httpx.get(url, timeout=10)
    if response.status_code != 200 or CONTENT_HEADER not in response.headers:
        raise BenchError(f"GET {url} answered {response.status_code} without {CONTENT_HEADER}.")
    return response


def installed(package: str) -> str:
    try:
        return f"{package} {version(package)}"
    except Exception:
        return f"{package} (not installed)"


def header(run: Run, quick: bool, elapsed: float) -> str:
    budget = run.budget
    load = run.load.name if run.load else "(not started)"
    servers = ", ".join(installed(name) for name in ("daphne", "uvicorn", "gunicorn"))
    lines = [
        f"coordhub benchmarks ({'--quick' if quick else 'default'} run, "
        f"{elapsed / 60:.1f} min): each ratio is figure / baseline, both measured in this "
        "run, side by side (1, 2, 4: on the same server process)",
        f"machine: {os.cpu_count()} CPUs, shared with the load generator and other work; "
        f"Python {platform.python_version()}; Django {version('django')}",
        f"load generator: {load}; {budget.rounds} round(s) of {budget.seconds} s runs, "
        "each target run between two baseline runs; ratio = median over rounds of "
        "target / mean of its two baseline runs",
        f"web servers: {servers}; access logs off; COORDHUB_ENV=testing, DEBUG off, "
        "LOG_LEVEL=WARNING",
        "1/4/5: ENABLE_RATE_LIMITING=true, read and start limits 10000000/min, so every read "
        "spends the read check; 4 runs one daphne per cache",
        f"2: one keep-alive client, {budget.latency_samples} starts (simulated, 0.05 s) "
        f"alternating with GET /bench/minimal; MAX_CONCURRENT_OPERATIONS=1000; "
        f"`coordhub_worker --threads {WORKER_THREADS}` running on the same database",
        f"3: all clients share one address (one client to the limits); slot races run "
        f"without a worker and with rate limiting off; limit {SLOT_LIMIT} slots",
        f"6: computed, ladder {polling.describe_ladder()}",
        "7: tests/scaleout, each scenario on its own PostgreSQL, Redis, 2 daphne processes "
        "and 2 workers (lease 3 s, sweep every 1 s for the kill -9); 5xx rows count "
        "answers other than 503 (an honest 'unavailable')",
        f"8: in process (Django's test client, no server), one migrated SQLite file with "
        f"{history.SMALL} then {history.LARGE:,} finished operations and "
        f"{sum(history.ACTIVE.values())} active ones; median of 5 runs of "
        f"{budget.history_requests} requests per read and size",
        live.describe(run.live_budget),
        line.describe(run.line_budget),
    ]
    # With --only N, the lines of the other sections ("2: ...", "1/4/5: ...") go.
    sections = [text.split(":")[0].split("/") for text in lines]
    return "\n".join(
        text
        for text, numbers in zip(lines, sections, strict=True)
        if not run.only or not numbers[0].isdigit() or run.only in numbers
    )


def section_number(row: Row) -> int:
    """Order rows by the measurement number they start with (set-up problems first)."""
    number = row.measurement.split(".")[0]
    return int(number) if number.isdigit() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about three minutes")
    parser.add_argument(
        "--only", choices=[str(number) for number in range(1, 11)], help="run one section alone"
    )
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator for throughput (auto: wrk when installed)",
    )
    parser.add_argument(
        "--faults",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the scale-out fault scenarios of tests/scaleout (default: on unless --quick)",
    )
    args = parser.parse_args(argv)
    if args.faults is None:
        args.faults = not args.quick and args.only in (None, "7")

    def stop_on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    directory = Path(tempfile.mkdtemp(prefix="coordhub-bench-"))
    stack = Stack(directory)
    budgets = (
        (QUICK, live.QUICK, line.QUICK) if args.quick else (DEFAULT, live.DEFAULT, line.DEFAULT)
    )
    run = Run(stack, *budgets, args.client, args.only or "")
    began = time.monotonic()
    interrupted = False
    try:
        run.section(["set-up"], run.start_services)
        if run.load is not None:
            run.section(
                ["1. reads", "4. rate-limit check", "5. web servers"], run.reads_and_servers
            )
            run.section(["2. admission, SQLite"], lambda: run.admission_latency("SQLite"))
            run.section(
                ["2. admission, PostgreSQL + Redis"],
                lambda: run.admission_latency("PostgreSQL + Redis"),
            )
            run.section(["3. over-admission"], run.contention)
        if args.faults:
            progress("scale-out and faults: the tests/scaleout scenarios (about 2 minutes)")
            run.section([faults.NOT_RUN], lambda: faults.rows(directory))
        elif not args.only:
            run.rows.append(Row(faults.NOT_RUN, "not run (--quick; add --faults)"))
        run.section(["6. polls"], polling.rows)
        if run.wanted("8. history"):
            progress("history: the reads at 100 and 100,000 finished operations, in process")
        run.section(["8. history"], lambda: history.rows(run.budget.history_requests))
        if run.load is not None:
            for names, measure in live.measurements(
                run.stack, run.databases, run.redis_url, run.load, run.live_budget
            ):
                if run.wanted(names[0]):
                    progress(f"live updates: {names[0][3:]}")
                run.section(names, measure)
            for names, measure in line.measurements(
                run.stack, run.databases, run.postgres, run.line_budget
            ):
                if run.wanted(names[0]):
                    progress(f"the line: {names[0][10:]}")
                run.section(names, measure)
    except KeyboardInterrupt:
        progress("interrupted: stopping everything")
        interrupted = True
    finally:
        stack.close()
    failures = [row for row in run.rows if row.error]
    if failures and not interrupted:
        progress(f"logs kept in {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)
    if interrupted:
        return 130
    print(header(run, args.quick, time.monotonic() - began))
    print()
    print(render(sorted(run.rows, key=section_number)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
