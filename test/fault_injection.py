"""Test helper: make one call of a function fail, as one bad frame would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def fail_on_call(
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    name: str,
    failing_call: int,
    make_failure: Callable[[], Any],
) -> None:
    """Patch ``target.name`` so that its ``failing_call``-th call (1-based) raises
    ``make_failure()`` when that is an exception, else returns it; every other call goes
    to the original."""
    original = getattr(target, name)
    calls = {"n": 0}

    def patched(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == failing_call:
            failure = make_failure()
            if isinstance(failure, BaseException):
                raise failure
            return failure
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, patched)
