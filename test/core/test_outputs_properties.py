"""Whatever the network outputs, every output of the stack validates and serializes.

Random and adversarial probability maps (noise, hundreds of tiny blobs, one huge blob,
straight and crossing lines, rings, 1-3 px wide stents, shapes touching the border, empty,
all ones) for the guidewire, stent and tip-heatmap channels go through

* the geometry (:func:`extract_wires`, :func:`extract_stents`) on the model grid, and
* the pipeline's post-network stages (a test engine returns the maps as logits; decode,
  geometry, mapping back to the input grid, tracking, masks),

then through the ``results.jsonl`` record builder and validator (what
:class:`ResultsWriter` checks before writing a line) and the ROS message builders of the
segmentation node (:mod:`fluoro_perception.nodes.conversions`), whose messages must
serialize (``rclpy.serialization.serialize_message``) with finite numbers only.
"""

from __future__ import annotations

import json
import math
from array import array

import cv2
import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rclpy.serialization import serialize_message

from fluoro_perception.core.geometry import GeometryConfig, extract_stents, extract_wires
from fluoro_perception.core.model_metadata import ModelMetadata, PreprocessSpec
from fluoro_perception.core.overlay import render_overlay
from fluoro_perception.core.pipeline import PerceptionPipeline, PipelineConfig
from fluoro_perception.core.types import FrameResult
from fluoro_perception.evaluation.results_io import result_record, validate_record
from fluoro_perception.nodes import conversions as conv

#: Examples per property: bounded for CI (each runs the geometry on up to three maps).
MAX_EXAMPLES = 40
PROPERTY_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SPACING_M = 2.0e-4  # [m/px]
STAMP_NS = 1_700_000_000_000_000_000
FRAME_PERIOD_NS = 66_666_667
SHAPE_KINDS = ("noise", "blobs", "huge_blob", "line", "crossing", "ring", "thin_stent", "border")


@st.composite
def shape_mask(draw, height: int, width: int) -> np.ndarray:
    """One 0/1 uint8 layer of an adversarial kind, parameters drawn by hypothesis."""
    kind = draw(st.sampled_from(SHAPE_KINDS))
    layer = np.zeros((height, width), np.uint8)
    x = st.integers(-3, width + 2)
    y = st.integers(-3, height + 2)
    thickness = draw(st.integers(1, 3))
    if kind == "noise":
        seed = draw(st.integers(0, 2**16))
        share = draw(st.floats(0.05, 0.95))
        layer[:] = np.random.default_rng(seed).random((height, width)) < share
    elif kind == "blobs":  # hundreds of 1-2 px specks
        seed = draw(st.integers(0, 2**16))
        count = draw(st.integers(1, 400))
        rng = np.random.default_rng(seed)
        size = draw(st.integers(1, 2))
        for row, col in zip(
            rng.integers(0, height, count), rng.integers(0, width, count), strict=True
        ):
            layer[row : row + size, col : col + size] = 1
    elif kind == "huge_blob":
        centre = (draw(x), draw(y))
        axes = (draw(st.integers(width // 3, width)), draw(st.integers(height // 3, height)))
        cv2.ellipse(layer, centre, axes, draw(st.integers(0, 179)), 0, 360, 1, thickness=-1)
    elif kind in ("line", "crossing"):
        for _ in range(1 if kind == "line" else 2):
            cv2.line(layer, (draw(x), draw(y)), (draw(x), draw(y)), 1, thickness=thickness)
    elif kind == "ring":
        radius = draw(st.integers(1, max(1, min(height, width) // 2)))
        cv2.circle(layer, (draw(x), draw(y)), radius, 1, thickness=thickness)
    elif kind == "thin_stent":  # a 1-3 px wide bar (a stent seen edge-on or a strut)
        length = draw(st.integers(2, max(2, max(height, width))))
        angle = draw(st.floats(0.0, math.pi))
        cx, cy = draw(x), draw(y)
        dx, dy = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
        start = (round(cx - dx), round(cy - dy))
        end = (round(cx + dx), round(cy + dy))
        cv2.line(layer, start, end, 1, thickness=thickness)
    else:  # border: a band along one edge, or a box in a corner
        side = draw(st.sampled_from(("top", "bottom", "left", "right", "corner")))
        band = draw(st.integers(1, 4))
        if side == "top":
            layer[:band] = 1
        elif side == "bottom":
            layer[-band:] = 1
        elif side == "left":
            layer[:, :band] = 1
        elif side == "right":
            layer[:, -band:] = 1
        else:
            layer[: draw(st.integers(1, height)), : draw(st.integers(1, width))] = 1
    return layer


@st.composite
def probability_map(draw, height: int, width: int) -> np.ndarray:
    """``(H, W)`` float32 in ``[0, 1]``: empty, all ones, or 1-3 shapes on a background."""
    kind = draw(st.sampled_from(("empty", "ones", "shapes", "shapes", "shapes")))
    if kind == "empty":
        return np.zeros((height, width), np.float32)
    if kind == "ones":
        return np.full((height, width), draw(st.sampled_from((1.0, 0.999, 0.5))), np.float32)
    layers = draw(st.lists(shape_mask(height, width), min_size=1, max_size=3))
    peak = draw(st.floats(0.3, 1.0))
    background = draw(st.sampled_from((0.0, 0.0, 0.05, 0.3)))
    seed = draw(st.integers(0, 2**16))
    values = np.maximum.reduce(layers).astype(np.float32) * peak
    if background:
        values = np.maximum(values, np.random.default_rng(seed).random(values.shape) * background)
    return np.clip(values, 0.0, 1.0).astype(np.float32)


@st.composite
def network_maps(draw, min_size: int = 4, max_size: int = 64) -> dict[str, np.ndarray]:
    """Guidewire, stent and tip-heatmap probability maps of one frame (same grid)."""
    height = draw(st.integers(min_size, max_size))
    width = draw(st.integers(min_size, max_size))
    return {
        "guidewire": draw(probability_map(height, width)),
        "stent": draw(probability_map(height, width)),
        "tip": draw(probability_map(height, width)),
    }


# ----------------------------------------------------------------------------- checks


def _assert_finite_message(message, where: str) -> None:
    """Every float of a ROS message (nested messages, sequences, arrays) is finite."""
    for field in message.get_fields_and_field_types():
        value = getattr(message, field)
        at = f"{where}.{field}"
        if isinstance(value, float):
            assert math.isfinite(value), f"{at} = {value}"
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), f"{at} has a non-finite value"
        elif isinstance(value, array) and value.typecode in "fd":
            assert all(math.isfinite(v) for v in value), f"{at} has a non-finite value"
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if hasattr(item, "get_fields_and_field_types"):
                    _assert_finite_message(item, f"{at}[{index}]")
                elif isinstance(item, float):
                    assert math.isfinite(item), f"{at}[{index}] = {item}"
        elif hasattr(value, "get_fields_and_field_types"):
            _assert_finite_message(value, at)


def assert_outputs_valid(result: FrameResult, image: np.ndarray, encoding: str) -> None:
    """The results.jsonl record and every message the node publishes for ``result``."""
    record = result_record("frame", result, latency_ms=1.0)
    validate_record(record, where="property example")
    json.dumps(record, allow_nan=False)

    header = conv.make_header(result.stamp_ns, "fluoro_detector")
    messages = conv.pose_messages(
        result, header, pixel_spacing_m=SPACING_M, min_tip_confidence=0.0, tracking_enabled=True
    )
    messages += [
        ("guidewire_mask", conv.image_to_msg(result.guidewire_mask, "mono8", header)),
        ("stent_mask", conv.image_to_msg(result.stent_mask, "mono8", header)),
        ("labels", conv.image_to_msg(result.labels, "mono8", header)),
        ("overlay", conv.image_to_msg(render_overlay(image, result, encoding), "rgb8", header)),
        ("markers", conv.markers_msg(result, SPACING_M, header)),
    ]
    for key, message in messages:
        assert serialize_message(message), key
        _assert_finite_message(message, key)


def _labels(maps: dict[str, np.ndarray]) -> np.ndarray:
    scores = np.stack([np.full_like(maps["guidewire"], 0.5), maps["guidewire"], maps["stent"]])
    return np.argmax(scores, axis=0).astype(np.uint8)


# ----------------------------------------------------------------------------- geometry


def _line_stent_maps() -> dict[str, np.ndarray]:
    """The failure of issue 13 found by the pipeline property below: a stent map that is
    one straight 1 px line of 30 px (``stent_min_area_px``) gave a 2-point outline."""
    stent = np.zeros((40, 40), np.float32)
    stent[5:35, 10] = 1.0
    zeros = np.zeros_like(stent)
    return {"guidewire": zeros, "stent": stent, "tip": zeros}


@PROPERTY_SETTINGS
@given(maps=network_maps(), use_tip=st.booleans(), use_stent_bridge=st.booleans())
@example(maps=_line_stent_maps(), use_tip=False, use_stent_bridge=False)
def test_geometry_outputs_validate_and_serialize(maps, use_tip, use_stent_bridge) -> None:
    config = GeometryConfig()
    wires = extract_wires(
        maps["guidewire"],
        maps["tip"] if use_tip else None,
        config,
        stent_prob=maps["stent"] if use_stent_bridge else None,
    )
    stents = extract_stents(maps["stent"], config)
    labels = _labels(maps)
    masks = [np.where(labels == k, 255, 0).astype(np.uint8) for k in (1, 2)]
    result = FrameResult(STAMP_NS, labels, masks[0], masks[1], wires=wires, stents=stents)
    image = np.round(255 * (1.0 - maps["guidewire"])).astype(np.uint8)
    assert_outputs_valid(result, image, "mono8")


# ----------------------------------------------------------------------------- pipeline


class MapsEngine:
    """Test engine: returns the drawn maps as the network's logits and tip heatmap."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.metadata = ModelMetadata(
            architecture="maps_double",
            classes=("background", "guidewire", "stent"),
            heads=("logits", "tip_heatmap"),
            stride=16,
            preprocessing=PreprocessSpec(input_size=size),
        )
        self.maps: dict[str, np.ndarray] = {}

    def run(self, net_input: np.ndarray) -> dict[str, np.ndarray]:
        eps = 1e-6
        wire, stent = self.maps["guidewire"], self.maps["stent"]
        background = np.clip(1.0 - np.maximum(wire, stent), eps, 1.0)
        probs = np.stack([background, wire, stent]).clip(eps, 1.0)
        tip = self.maps["tip"].clip(eps, 1.0 - eps)
        return {
            "logits": np.log(probs)[None].astype(np.float32),
            "tip_heatmap": np.log(tip / (1.0 - tip))[None, None].astype(np.float32),
        }


@st.composite
def pipeline_case(draw):
    """Model grid, input frame (size, encoding, exposed field) and 1-3 frames of maps."""
    side = draw(st.sampled_from((32, 48, 64)))
    height = draw(st.sampled_from((side, side // 2 + 8, 2 * side)))
    width = draw(st.sampled_from((side, side + 24, 2 * side)))
    encoding = draw(st.sampled_from(("mono8", "mono16", "rgb8")))
    level = draw(st.integers(60, 200))
    field = draw(st.booleans())  # black shutters around a smaller exposed field
    frames = draw(st.lists(network_maps(side, side), min_size=1, max_size=3))
    return side, (height, width), encoding, level, field, frames


def _frame_image(shape: tuple[int, int], encoding: str, level: int, field: bool) -> np.ndarray:
    height, width = shape
    grey = np.full((height, width), level, np.uint8)
    if field:
        grey[: height // 6] = 0
        grey[:, : width // 5] = 0
    if encoding == "mono16":
        return grey.astype(np.uint16) * 16  # 12-bit data
    if encoding == "rgb8":
        return np.repeat(grey[..., None], 3, axis=2)
    return grey


@PROPERTY_SETTINGS
@given(case=pipeline_case())
def test_pipeline_outputs_validate_and_serialize(case) -> None:
    side, shape, encoding, level, field, frames = case
    engine = MapsEngine((side, side))
    pipeline = PerceptionPipeline(engine, PipelineConfig(min_tip_confidence=0.0))
    image = _frame_image(shape, encoding, level, field)
    for index, maps in enumerate(frames):
        engine.maps = maps
        result = pipeline.process(image, STAMP_NS + index * FRAME_PERIOD_NS, encoding)
        assert result.labels.shape == shape
        assert_outputs_valid(result, image, encoding)
