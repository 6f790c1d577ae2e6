"""Run the whole suite: once on SQLite, then the database tests on PostgreSQL and Redis.

Starts throwaway PostgreSQL and Redis servers for the run and removes them
after. A server that cannot start fails the run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coordhub.testing.environment import without_configuration  # noqa: E402
from coordhub.testing.services import PostgresServer, RedisServer, ServiceError  # noqa: E402


def pytest(args: list[str], env: dict[str, str], title: str) -> int:
    print(f"\n=== {title} ===", flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env)


def main(args: list[str]) -> int:
    redis_server, postgres_server = RedisServer(), PostgresServer()
    try:
        redis_server.start()
        postgres_server.start()
    except (ServiceError, subprocess.CalledProcessError) as exc:
        redis_server.remove()
        postgres_server.remove()
        print(f"error: a test service could not start: {exc}", file=sys.stderr)
        return 1
    try:
        env = without_configuration() | {
            "COORDHUB_TEST_REDIS_URL": redis_server.url,
            "COORDHUB_TEST_POSTGRES_URL": postgres_server.url,
        }
        sqlite = pytest(args, env, "SQLite (embedded mode): the whole suite")
        scale_out = pytest(
            ["-m", "django_db and not e2e", *args],
            env | {"DATABASE_URL": postgres_server.url, "REDIS_URL": redis_server.url},
            "PostgreSQL + Redis (scale-out mode): the database tests",
        )
    finally:
        redis_server.remove()
        postgres_server.remove()
    if scale_out == 5 and args:
        # Only a chosen subset was asked for, and none of it touches the database.
        scale_out = 0
    print(f"\nSQLite run exit code {sqlite}, PostgreSQL run exit code {scale_out}")
    return sqlite or scale_out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
