"""Fixtures of the reliability tests: the node tests' own grey-level model and DDS
harness fixtures (``test/nodes/test_segmentation_node.py``), shared rather than copied."""

from __future__ import annotations

from _node_harness import grey_model, harness_factory

__all__ = ["grey_model", "harness_factory"]
