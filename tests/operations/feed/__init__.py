"""Tests of the change feed (`operations.feed`), and the subscriber they record changes with."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from operations.feed import Change


class Recorder:
    """A feed subscriber that keeps every change it is handed, and can wait for one."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self._condition = threading.Condition()

    def __call__(self, change: Change) -> None:
        with self._condition:
            self.changes.append(change)
            self._condition.notify_all()

    def wait_for(self, wanted: Callable[[Change], bool], timeout: float = 2.0) -> Change | None:
        """The first change kept that is `wanted`, waiting up to `timeout` seconds for one."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                found = next((change for change in self.changes if wanted(change)), None)
                left = deadline - time.monotonic()
                if found is not None or left <= 0:
                    return found
                self._condition.wait(left)

    def forget(self) -> None:
        """Drop the changes kept so far: the next wait sees only later ones."""
        with self._condition:
            self.changes.clear()
