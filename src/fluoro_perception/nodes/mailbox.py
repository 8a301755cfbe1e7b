"""A thread-safe one-slot frame mailbox: the hand-over between a node's callback and its worker."""

from __future__ import annotations

import threading
from typing import Any


class FrameMailbox:
    """A thread-safe one-slot mailbox: ``put`` replaces, ``take`` waits for an item.

    The image callback puts; the worker takes. Keeping only the newest frame bounds the
    latency: a slow model skips frames instead of falling behind.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Any = None
        self._closed = False

    def put(self, item: Any) -> bool:
        """Store ``item``; True when it replaced an item nobody had taken."""
        with self._condition:
            replaced = self._item is not None
            self._item = item
            self._condition.notify()
            return replaced

    def take(self, timeout_s: float) -> Any:
        """The stored item (removing it), or None after ``timeout_s`` or when closed."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout_s)
            item, self._item = self._item, None
            return item

    def clear(self) -> bool:
        """Drop a stored item; True when there was one."""
        with self._condition:
            had_item = self._item is not None
            self._item = None
            return had_item

    def close(self) -> None:
        """Wake a waiting ``take`` for good (worker shutdown)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def reopen(self) -> None:
        with self._condition:
            self._closed = False
