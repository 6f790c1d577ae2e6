"""Django's SQLite backend, keeping connections open between requests.

Under ASGI every request runs its sync code in a thread of its own, so Django
opens a connection for each request that touches the database and closes it at
the end. For SQLite the opening costs more than a poll's queries: the driver's
set-up, Django's SQL functions and PRAGMAs, and parsing the schema again on the
first statement. This backend puts a closed connection on a short idle list
instead, and the next connect takes it from there (PostgreSQL gets the same from
Django's pool option). In-memory databases are left as Django handles them.
"""

from __future__ import annotations

import queue
import sqlite3
from typing import Any, ClassVar

from django.db.backends.sqlite3 import base

IDLE_CONNECTIONS = 8


class DatabaseWrapper(base.DatabaseWrapper):
    idle: ClassVar[dict[str, queue.LifoQueue[sqlite3.Connection]]] = {}

    def idle_connections(self) -> queue.LifoQueue[sqlite3.Connection]:
        name = str(self.settings_dict["NAME"])
        return self.idle.get(name) or self.idle.setdefault(name, queue.LifoQueue())

    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        if not self.is_in_memory_db():
            try:
                return self.idle_connections().get_nowait()
            except queue.Empty:
                pass
        return super().get_new_connection(conn_params)

    def _close(self) -> None:
        # Closed inside an atomic block, the connection stays this wrapper's until the
        # block ends; only a connection nobody holds any more may be handed on.
        if self.connection is None or self.in_atomic_block or self.is_in_memory_db():
            return super()._close()
        idle = self.idle_connections()
        try:
            if self.connection.in_transaction:
                self.connection.rollback()
        except sqlite3.Error:
            return super()._close()
        if idle.qsize() >= IDLE_CONNECTIONS:
            return super()._close()
        idle.put(self.connection)
        return None
