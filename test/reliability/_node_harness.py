"""Shared pieces of the node-level reliability tests.

Re-exports the DDS harness of ``test/nodes/test_segmentation_node.py`` (one real node, a
probe node that publishes frames and records every output) so that the reliability
tests drive exactly the same set-up as the node's own tests, plus small helpers.
"""

from __future__ import annotations

import sys
from pathlib import Path

_NODES_TESTS = str(Path(__file__).resolve().parents[1] / "nodes")
if _NODES_TESTS not in sys.path:
    sys.path.insert(0, _NODES_TESTS)

from test_segmentation_node import (  # noqa: E402  (needs the path above)
    DEADLINE_S,
    FRAME_ID,
    SIZE,
    SPACING_M,
    Harness,
    base_overrides,
    grey_model,
    harness_factory,
    image_msg,
    make_grey_level_model,
    scene_image,
    wait_for,
)

from fluoro_perception.nodes import conversions as conv  # noqa: E402

__all__ = [
    "DEADLINE_S",
    "FRAME_ID",
    "SIZE",
    "SPACING_M",
    "Harness",
    "base_overrides",
    "diagnostics_values",
    "grey_model",
    "harness_factory",
    "image_msg",
    "make_grey_level_model",
    "outputs_with_stamp",
    "scene_image",
    "wait_for",
]


def diagnostics_values(harness: Harness) -> list[dict[str, str]]:
    """The key/value pairs of every ``/diagnostics`` status the probe received."""
    return [
        {kv.key: kv.value for kv in message.status[0].values}
        for message in harness.messages("diagnostics")
    ]


def outputs_with_stamp(harness: Harness, key: str, stamp_ns: int) -> list:
    """Messages recorded on output ``key`` whose header stamp is ``stamp_ns``."""
    return [m for m in harness.messages(key) if conv.stamp_to_ns(m.header.stamp) == stamp_ns]
