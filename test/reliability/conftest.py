"""Fixtures of the reliability tests: tiny grey-level models and the DDS node harness."""

from __future__ import annotations

from pathlib import Path

import pytest
from _node_harness import Harness, make_grey_level_model


@pytest.fixture(scope="module")
def grey_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64x64 one-layer model: dark -> guidewire, mid grey -> stent, bright -> background."""
    return make_grey_level_model(tmp_path_factory.mktemp("models") / "grey.onnx")


@pytest.fixture
def harness_factory():
    """Build node harnesses inside a test; every one is closed at the end of the test."""
    harnesses: list[Harness] = []

    def make(overrides: dict[str, object], **kwargs) -> Harness:
        harnesses.append(Harness(overrides, **kwargs))
        return harnesses[-1]

    yield make
    for harness in harnesses:
        harness.close()
