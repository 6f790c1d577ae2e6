"""Run operations: django-tasks-db worker loops, one thread per slot, plus upkeep.

One process runs as many task loops as there are slots, so every admitted
operation starts at once; a maintenance thread renews this worker's liveness
record and sweeps expired leases at least once per lease. SIGTERM or Ctrl-C
stops taking work, gives running operations a grace period to finish, then
interrupts them so they end `failed` with a reason and free their slots.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME
from django_tasks_db.management.commands.db_worker import Worker

from operations import maintenance
from operations.kinds.context import stop_requested

logger = logging.getLogger("operations.worker")

HEARTBEAT_SECONDS = 5
WORKER_CONNECTION_MAX_AGE = 60


class Command(BaseCommand):
    help = "Run coordhub's task worker: one task loop per slot, plus lease sweeps."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=int,
            default=0,
            help="Task loops to run (default: MAX_CONCURRENT_OPERATIONS).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=0.5,
            help="Seconds an idle loop waits before looking for work again.",
        )
        parser.add_argument(
            "--shutdown-grace",
            type=float,
            default=10.0,
            help="Seconds running operations get to finish after SIGTERM.",
        )
        parser.add_argument("--worker-id", default="", help="Unique id (default: host-pid).")

    def handle(self, *args: Any, **options: Any) -> None:
        keep_a_connection_per_thread()
        config = settings.COORDHUB
        worker_id = options["worker_id"] or f"{socket.gethostname()}-{os.getpid()}"[:48]
        threads = options["threads"] or config.max_concurrent_operations
        loops = [task_loop(f"{worker_id}-{n}", options["interval"]) for n in range(threads)]
        stopping = threading.Event()
        maintenance_thread = threading.Thread(
            target=keep_up, args=(worker_id, threads, stopping), name="maintenance", daemon=True
        )
        runners = [
            threading.Thread(target=run_loop, args=(loop,), name=loop.worker_id) for loop in loops
        ]

        def stop(signum: int, frame: Any) -> None:
            if stopping.is_set():  # Ctrl-C reaches us both directly and through `serve`
                return
            logger.warning("Received %s: no new work; stopping.", signal.strsignal(signum))
            stopping.set()
            for loop in loops:
                loop.running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        maintenance_thread.start()
        for runner in runners:
            runner.start()
        self.stdout.write(f"Worker {worker_id} running {threads} task loops.")
        stopping.wait()
        shut_down(runners, options["shutdown_grace"])
        maintenance_thread.join(timeout=5)
        maintenance.retire(worker_id)
        self.stdout.write(f"Worker {worker_id} stopped.")


def keep_a_connection_per_thread() -> None:
    """Let each of this worker's threads keep its own connection instead of the pool.

    The PostgreSQL pool (settings.POSTGRES_POOL) serves web requests, which under
    ASGI each run in a thread of their own. A worker's threads live as long as the
    worker does, so each keeps one connection, dropped after a database error and
    opened again when next needed.
    """
    database = connections.settings[DEFAULT_DB_ALIAS]
    if database.get("OPTIONS", {}).get("pool"):
        connection.close()
        connection.close_pool()
        database["OPTIONS"] = {k: v for k, v in database["OPTIONS"].items() if k != "pool"}
        database["CONN_MAX_AGE"] = WORKER_CONNECTION_MAX_AGE


def task_loop(worker_id: str, interval: float) -> Worker:
    return Worker(
        queue_names=[DEFAULT_TASK_QUEUE_NAME],
        interval=interval,
        batch=False,
        backend_name=DEFAULT_TASK_BACKEND_ALIAS,
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=[],
    )


def run_loop(loop: Worker) -> None:
    """Run one task loop, restarting it after a database outage instead of dying."""
    while loop.running:
        try:
            loop.run()
        except Exception:
            logger.exception("Task loop %s failed; restarting in 1 s.", loop.worker_id)
            time.sleep(1)
        finally:
            connection.close()


def keep_up(worker_id: str, threads: int, stopping: threading.Event) -> None:
    """Beat the liveness record and sweep, until the worker stops."""
    config = settings.COORDHUB
    sweep_every = min(config.cleanup_interval_seconds, config.slot_lease_seconds)
    beat_every = min(HEARTBEAT_SECONDS, config.slot_lease_seconds / 3)
    next_sweep = 0.0
    clock = 0.0
    while not stopping.is_set():
        try:
            close_old_connections()
            maintenance.beat(worker_id, threads)
            if clock >= next_sweep:
                result = maintenance.sweep()
                next_sweep = clock + sweep_every
                if result.reclaimed or result.pruned_operations:
                    logger.info("Sweep: %s", result)
        except Exception:  # keep beating through a passing database outage
            logger.exception("Worker upkeep failed; retrying.")
        stopping.wait(beat_every)
        clock += beat_every
    connection.close()


def shut_down(runners: list[threading.Thread], grace: float) -> None:
    """Let running operations finish within `grace`, then interrupt them."""
    deadline = time.monotonic() + grace
    for runner in runners:
        runner.join(timeout=max(0.0, deadline - time.monotonic()))
    if any(runner.is_alive() for runner in runners):
        stop_requested.set()
        for runner in runners:
            runner.join(timeout=grace)
