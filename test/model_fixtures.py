"""Tiny random-weight ONNX models built with ``onnx.helper`` (no torch), for runtime tests.

The graph is ``image (B, 1, H, W) -> Conv 3x3 (8) -> Relu -> Conv 1x1`` into each head, so
every output has the exported layout of :mod:`fluoro_perception.core.model_metadata`:
``logits (B, C, H, W)`` and ``tip_heatmap (B, 1, H, W)``. The batch dimension is dynamic.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fluoro_perception.core.model_metadata import METADATA_KEY, ModelMetadata, PreprocessSpec
from fluoro_perception.core.types import CLASS_NAMES

OPSET = 17
#: IR version 8 is read by every onnxruntime >= 1.14 (the GPU machines run older ones).
IR_VERSION = 8
HIDDEN_CHANNELS = 8


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_random_onnx_model(
    path: str | Path,
    *,
    classes: tuple[str, ...] = CLASS_NAMES,
    heads: tuple[str, ...] = ("logits", "tip_heatmap"),
    input_size: tuple[int, int] = (64, 64),
    stride: int = 16,
    seed: int = 0,
    metadata_overrides: dict[str, Any] | None = None,
    include_metadata: bool = True,
) -> Path:
    """Write a random-weight segmentation model to ``path`` and return the path.

    Parameters
    ----------
    path : str or Path
        Output ``.onnx`` file (parent folders are created).
    classes : tuple[str, ...]
        Class names; the ``logits`` head gets ``len(classes)`` channels.
    heads : tuple[str, ...]
        Outputs to build, any of ``"logits"``, ``"tip_heatmap"``.
    input_size : tuple[int, int]
        Static ``(H, W)`` of the input and outputs [px].
    stride : int
        Written to the metadata (the graph itself works at any size).
    seed : int
        Seed of the random weights.
    metadata_overrides : dict or None
        Merged (recursively for ``"preprocessing"``) into the metadata JSON *without*
        validation, so tests can write inconsistent metadata on purpose.
    include_metadata : bool
        False writes no ``metadata_props`` entry at all.
    """
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in input_size)
    head_channels = {"logits": len(classes), "tip_heatmap": 1}
    initializers = [
        numpy_helper.from_array(
            rng.normal(0.0, 0.5, (HIDDEN_CHANNELS, 1, 3, 3)).astype(np.float32), "stem_weight"
        ),
        numpy_helper.from_array(
            rng.normal(0.0, 0.1, HIDDEN_CHANNELS).astype(np.float32), "stem_bias"
        ),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["image", "stem_weight", "stem_bias"], ["stem"], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["stem"], ["features"]),
    ]
    outputs = []
    for head in heads:
        channels = head_channels.get(head, 1)
        initializers += [
            numpy_helper.from_array(
                rng.normal(0.0, 1.0, (channels, HIDDEN_CHANNELS, 1, 1)).astype(np.float32),
                f"{head}_weight",
            ),
            numpy_helper.from_array(
                rng.normal(0.0, 0.5, channels).astype(np.float32), f"{head}_bias"
            ),
        ]
        nodes.append(
            helper.make_node("Conv", ["features", f"{head}_weight", f"{head}_bias"], [head])
        )
        outputs.append(
            helper.make_tensor_value_info(
                head, TensorProto.FLOAT, ["batch", channels, height, width]
            )
        )
    graph = helper.make_graph(
        nodes,
        "random_segmentation",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, height, width])],
        outputs,
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="fluoro_perception.test.model_fixtures",
    )
    model.ir_version = IR_VERSION
    if include_metadata:
        metadata = asdict(
            ModelMetadata(
                architecture="random_test_net",
                classes=tuple(classes),
                heads=("logits",),  # the real list is set below, unvalidated
                stride=stride,
                preprocessing=PreprocessSpec(input_size=(height, width)),
            )
        )
        metadata["heads"] = list(heads)
        metadata = _merge(metadata, metadata_overrides or {})
        helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
