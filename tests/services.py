"""Throwaway PostgreSQL and Redis servers: they live in `coordhub.testing.services`.

Only re-exported here for the test modules that still import `tests.services`;
new code imports `coordhub.testing.services`.
"""

from __future__ import annotations

from coordhub.testing.services import PostgresServer, RedisServer, ServiceError, free_port

__all__ = ["PostgresServer", "RedisServer", "ServiceError", "free_port"]
