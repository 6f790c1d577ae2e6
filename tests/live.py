"""A real coordhub served by `manage.py serve` (daphne and a worker) for outside-in tests."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from coordhub.testing.environment import child_environment
from coordhub.testing.processes import ROOT, WebServer, manage, manage_command
from coordhub.testing.services import free_port

__all__ = ["ROOT", "LiveServer"]


class LiveServer(WebServer):
    """`manage.py serve` on a free port with its own SQLite database, migrated at start."""

    def __init__(self, directory: Path, **environ: str) -> None:
        port = free_port()
        database = f"sqlite:///{directory / 'db.sqlite3'}"
        env = child_environment(DATABASE_URL=database, **environ)
        argv = manage_command("serve", "--port", str(port))
        super().__init__("serve", argv, env, directory / "serve.log", port=port)

    def start(self) -> Self:
        manage("migrate", "--no-input", env=self.env)
        super().start()
        self.wait_until_ready()
        return self
