"""Known answers: a wire and a stent at known INPUT positions must come back there.

A frame of 320 x 240 px (non-square) with black shutters around a collimated field is
cropped to the field and letterboxed (or stretched) into a 256 x 256 model grid. The
model is a stand-in whose output draws the wire, its tip blob and the stent on the model
grid at the positions the scene has in the input, mapped with a transform computed BY
HAND here (not with the code under test). Whatever the pipeline reports must then be
the scene again, in input pixels, within 1-2 px: centerline, tip, tip direction and
stent centroid / axis / length / diameter, in

* the ``FrameResult`` (``PerceptionPipeline``),
* ``results.jsonl`` written by ``fluoro-perception infer`` from a PNG (the stand-in is an
  ONNX model whose outputs are those maps as constants), read back as plain JSON,
* the ROS messages the node publishes (``nodes/conversions.py`` builders), in metres.

An x/y swap, a missed crop offset or letterbox pad, or a wrong scale moves the answers
by tens of pixels. The other tests cover branches nothing else runs: a model without a
tip head, a 4-class model whose catheter output decides which end is the tip, and
``min_tip_confidence`` deciding which wires the tracker gets.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fluoro_perception.core.model_metadata import METADATA_KEY, ModelMetadata, PreprocessSpec
from fluoro_perception.core.pipeline import PerceptionPipeline, PipelineConfig
from fluoro_perception.core.tracking import TrackerConfig
from fluoro_perception.core.types import FrameResult

IMAGE_SHAPE = (240, 320)  # (H, W) [px]
FIELD_BOX = (40, 30, 280, 210)  # x0, y0, x1, y1 (exclusive) of the exposed field [px]
MODEL_SHAPE = (256, 256)
FIELD_GREY, SHUTTER_GREY = 150, 0
# the scene in input pixels
TIP = (90.0, 170.0)
WIRE_END = (240.0, 70.0)  # the proximal end, inside the field
STENT_CENTRE = (200.0, 160.0)
STENT_LENGTH, STENT_DIAMETER = 50.0, 16.0  # [px]
STENT_AXIS = math.radians(20.0)  # from +x towards +y
WIRE_WIDTH_MODEL = 3  # [model px]
SPACING_M = 2.0e-4
STAMP_NS = 1_700_000_000_000_000_000
# tolerances [input px] / [rad]
POINT_TOL_PX = 1.0  # every centerline point to the true line
TIP_TOL_PX = 2.0
END_TOL_PX = 2.5  # the proximal end (no tip blob there to pin it)
CENTROID_TOL_PX = 1.0
SIZE_TOL_PX = 2.0
ANGLE_TOL_RAD = math.radians(2.0)


# ------------------------------------------------------------------ the transform by hand


def hand_transform(mode: str) -> tuple[float, float, float, float]:
    """``(scale_x, scale_y, pad_x, pad_y)`` of the field crop into the model grid."""
    x0, y0, x1, y1 = FIELD_BOX
    crop_w, crop_h = x1 - x0, y1 - y0  # 240 x 180
    model_h, model_w = MODEL_SHAPE
    if mode == "stretch":
        return model_w / crop_w, model_h / crop_h, 0.0, 0.0
    scale = min(model_w / crop_w, model_h / crop_h)  # 256 / 240
    content_w, content_h = round(crop_w * scale), round(crop_h * scale)  # 256 x 192
    return (
        content_w / crop_w,
        content_h / crop_h,
        float((model_w - content_w) // 2),
        float((model_h - content_h) // 2),  # 32
    )


def to_model(point: tuple[float, float], mode: str) -> tuple[float, float]:
    """An input-grid point in the model grid (pixel centres at integers, as cv2.resize)."""
    scale_x, scale_y, pad_x, pad_y = hand_transform(mode)
    x0, y0 = FIELD_BOX[:2]
    return (
        (point[0] - x0 + 0.5) * scale_x - 0.5 + pad_x,
        (point[1] - y0 + 0.5) * scale_y - 0.5 + pad_y,
    )


def stent_corners() -> np.ndarray:
    """(4, 2) corners of the stent rectangle in the input grid."""
    along = np.array([math.cos(STENT_AXIS), math.sin(STENT_AXIS)])
    across = np.array([-math.sin(STENT_AXIS), math.cos(STENT_AXIS)])
    centre = np.array(STENT_CENTRE)
    half_l, half_d = STENT_LENGTH / 2, STENT_DIAMETER / 2
    return np.array(
        [centre + sl * half_l * along + sd * half_d * across for sl, sd in
         ((1, 1), (1, -1), (-1, -1), (-1, 1))]
    )  # fmt: skip


def scene_image() -> np.ndarray:
    """(H, W) uint8: black shutters, a flat exposed field (its content is the model's job)."""
    image = np.full(IMAGE_SHAPE, SHUTTER_GREY, np.uint8)
    x0, y0, x1, y1 = FIELD_BOX
    image[y0:y1, x0:x1] = FIELD_GREY
    return image


# ------------------------------------------------------------------ the stand-in model

_SHIFT = 4  # cv2 drawing with 4 fractional bits: sub-pixel positions are honoured


def _fixed(point: tuple[float, float]) -> tuple[int, int]:
    return round(point[0] * (1 << _SHIFT)), round(point[1] * (1 << _SHIFT))


def _line_mask(start, end, width: int) -> np.ndarray:
    mask = np.zeros(MODEL_SHAPE, np.uint8)
    cv2.line(mask, _fixed(start), _fixed(end), 1, thickness=width, lineType=cv2.LINE_8,
             shift=_SHIFT)  # fmt: skip
    return mask.astype(bool)


def _polygon_mask(points_model: np.ndarray) -> np.ndarray:
    mask = np.zeros(MODEL_SHAPE, np.uint8)
    fixed = np.array([_fixed(tuple(p)) for p in points_model], np.int32)
    cv2.fillPoly(mask, [fixed], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask.astype(bool)


def _tip_logits(centre_model: tuple[float, float]) -> np.ndarray:
    ys, xs = np.mgrid[: MODEL_SHAPE[0], : MODEL_SHAPE[1]]
    distance2 = (xs - centre_model[0]) ** 2 + (ys - centre_model[1]) ** 2
    return (12.0 * np.exp(-distance2 / 8.0) - 6.0).astype(np.float32)


def scene_outputs(
    mode: str,
    *,
    wires: list[tuple[tuple[float, float], tuple[float, float]]] | None = None,
    stent: bool = True,
    catheter_end: tuple[float, float] | None = None,
    tip_head: bool = True,
) -> dict[str, np.ndarray]:
    """Model outputs (``logits`` (1, C, h, w) and maybe ``tip_heatmap``) drawing the scene.

    ``wires`` are ``(tip, other end)`` pairs in the input grid (default: the one wire of
    the scene); ``catheter_end`` adds a 4th class, a catheter tube over that end of the
    first wire and beyond it (the end is then inside the catheter: proximal).
    """
    wires = [(TIP, WIRE_END)] if wires is None else wires
    classes = 4 if catheter_end is not None else 3
    logits = np.full((1, classes, *MODEL_SHAPE), -8.0, np.float32)
    logits[0, 0] = 4.0  # background everywhere else
    wire_mask = np.zeros(MODEL_SHAPE, bool)
    for tip, end in wires:
        wire_mask |= _line_mask(to_model(tip, mode), to_model(end, mode), WIRE_WIDTH_MODEL)
    logits[0, 1][wire_mask] = 12.0
    if stent:
        corners = np.array([to_model(tuple(c), mode) for c in stent_corners()])
        logits[0, 2][_polygon_mask(corners)] = 12.0
    if catheter_end is not None:
        inner = catheter_end  # one end of the first wire
        outer = wires[0][1] if inner == wires[0][0] else wires[0][0]
        direction = np.subtract(inner, outer) / math.dist(inner, outer)
        # from 20 px inside the wire to 20 px beyond its end, 9 px wide (a catheter tube)
        start = tuple(np.add(inner, -20.0 * direction))
        stop = tuple(np.add(inner, 20.0 * direction))
        tube = _line_mask(to_model(start, mode), to_model(stop, mode), 9) & ~wire_mask
        logits[0, 3][tube] = 10.0
    outputs = {"logits": logits}
    if tip_head:
        heat = np.full(MODEL_SHAPE, -6.0, np.float32)
        for tip, _ in wires:
            heat = np.maximum(heat, _tip_logits(to_model(tip, mode)))
        outputs["tip_heatmap"] = heat[None, None]
    return outputs


def scene_metadata(mode: str, classes: int = 3, tip_head: bool = True) -> ModelMetadata:
    names = ("background", "guidewire", "stent", "catheter", "vessel")[:classes]
    return ModelMetadata(
        architecture="known_scene",
        classes=names,
        heads=("logits", "tip_heatmap") if tip_head else ("logits",),
        stride=16,
        preprocessing=PreprocessSpec(input_size=MODEL_SHAPE, crop_to_field=True, resize_mode=mode),
    )


class SceneEngine:
    """Test double: returns the scene's maps, whatever the input (checked for its shape)."""

    def __init__(self, mode: str, outputs: dict[str, np.ndarray]) -> None:
        self.metadata = scene_metadata(
            mode, classes=outputs["logits"].shape[1], tip_head="tip_heatmap" in outputs
        )
        self.input_shape = MODEL_SHAPE
        self.outputs = outputs

    def run(self, net_input: np.ndarray) -> dict[str, np.ndarray]:
        assert net_input.shape == (1, 1, *MODEL_SHAPE)
        return self.outputs


def write_scene_onnx(path: Path, mode: str) -> Path:
    """An ONNX model whose outputs are the scene's maps: ``0 * image + constant``."""
    outputs = scene_outputs(mode)
    nodes = [helper.make_node("Mul", ["image", "zero"], ["nothing"])]
    initializers = [numpy_helper.from_array(np.zeros((1,), np.float32), "zero")]
    graph_outputs = []
    for name, value in outputs.items():
        initializers.append(numpy_helper.from_array(value, f"{name}_value"))
        nodes.append(helper.make_node("Add", ["nothing", f"{name}_value"], [name]))
        graph_outputs.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *value.shape[1:]])
        )
    graph = helper.make_graph(
        nodes,
        "known_scene",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, *MODEL_SHAPE])],
        graph_outputs,
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(
        model, {METADATA_KEY: json.dumps(asdict(scene_metadata(mode)), sort_keys=True)}
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# ------------------------------------------------------------------ the answers


def distance_to_segment(points: np.ndarray, start, end) -> np.ndarray:
    start, end = np.asarray(start, float), np.asarray(end, float)
    direction = end - start
    t = np.clip(((points - start) @ direction) / (direction @ direction), 0.0, 1.0)
    return np.linalg.norm(points - (start + t[:, None] * direction), axis=1)


def angle_error(angle: float, expected: float, period: float = 2 * math.pi) -> float:
    return abs((angle - expected + period / 2) % period - period / 2)


def check_wire(centerline: np.ndarray, tip: np.ndarray, direction: float) -> None:
    """A reported wire against the scene's (all in input pixels)."""
    centerline = np.asarray(centerline, float).reshape(-1, 2)
    assert len(centerline) > 100  # ~180 px at ~1 px spacing
    distances = distance_to_segment(centerline, TIP, WIRE_END)
    assert distances.max() < POINT_TOL_PX, distances.max()
    assert math.dist(tip, TIP) < TIP_TOL_PX, (tip, TIP)
    np.testing.assert_allclose(tip, centerline[0], atol=2e-3)  # tip first
    assert math.dist(centerline[-1], WIRE_END) < END_TOL_PX, (centerline[-1], WIRE_END)
    expected = math.atan2(TIP[1] - WIRE_END[1], TIP[0] - WIRE_END[0])  # body -> tip
    assert angle_error(direction, expected) < ANGLE_TOL_RAD, (direction, expected)


def check_stent_pose(centroid, axis: float, axis_tol_rad: float = ANGLE_TOL_RAD) -> None:
    assert math.dist(centroid, STENT_CENTRE) < CENTROID_TOL_PX, (centroid, STENT_CENTRE)
    assert angle_error(axis, STENT_AXIS, math.pi) < axis_tol_rad, (axis, STENT_AXIS)


def check_stent_outline(outline: np.ndarray) -> None:
    """Every outline vertex on the rectangle's boundary, the polygon's area its area."""
    outline = np.asarray(outline, float).reshape(-1, 2)
    corners = stent_corners()
    edges = [distance_to_segment(outline, corners[k], corners[(k + 1) % 4]) for k in range(4)]
    assert np.min(edges, axis=0).max() < SIZE_TOL_PX
    area = cv2.contourArea(outline.astype(np.float32))
    assert area == pytest.approx(STENT_LENGTH * STENT_DIAMETER, rel=0.12)


def check_result(
    result: FrameResult, stent_axis_tol_rad: float = ANGLE_TOL_RAD, stent_extent: bool = True
) -> None:
    assert len(result.wires) == 1 and len(result.stents) == 1
    wire = result.wires[0]
    check_wire(wire.centerline_px, wire.tip_px, wire.tip_direction_rad)
    stent = result.stents[0]
    check_stent_pose(stent.centroid_px, stent.axis_rad, stent_axis_tol_rad)
    if stent_extent:
        assert stent.length_px == pytest.approx(STENT_LENGTH, abs=SIZE_TOL_PX)
        assert stent.diameter_px == pytest.approx(STENT_DIAMETER, abs=SIZE_TOL_PX)
    check_stent_outline(stent.outline_px)
    # the masks at input resolution: on the wire / stent, nothing in the shutters
    x0, y0, x1, y1 = FIELD_BOX
    for mask in (result.guidewire_mask, result.stent_mask):
        assert mask.shape == IMAGE_SHAPE
        assert not mask[:y0].any() and not mask[y1:].any()
        assert not mask[:, :x0].any() and not mask[:, x1:].any()
    middle = np.round(np.add(TIP, WIRE_END) / 2).astype(int)
    assert result.guidewire_mask[middle[1], middle[0]] == 255
    assert result.stent_mask[round(STENT_CENTRE[1]), round(STENT_CENTRE[0])] == 255


# ------------------------------------------------------------------ tests


def _scene_result(mode: str) -> FrameResult:
    engine = SceneEngine(mode, scene_outputs(mode))
    pipeline = PerceptionPipeline(engine, PipelineConfig(tracking_enabled=False))
    return pipeline.process(scene_image(), STAMP_NS)


def test_pipeline_reports_the_scene_in_input_pixels() -> None:
    check_result(_scene_result("letterbox"))


def test_pipeline_reports_the_scene_through_a_stretched_crop() -> None:
    # stretched 4:3 the rectangle is a parallelogram on the model grid, whose principal
    # axis is not the image of the rectangle's axis: mapping the direction back (what
    # stent_to_input did) left ~2 deg; the outline-based axis and extents: tests below
    check_result(_scene_result("stretch"), math.radians(3.0), stent_extent=False)


def test_stretched_stent_extents_come_back_within_two_pixels() -> None:
    (stent,) = _scene_result("stretch").stents
    assert stent.length_px == pytest.approx(STENT_LENGTH, abs=SIZE_TOL_PX)
    assert stent.diameter_px == pytest.approx(STENT_DIAMETER, abs=SIZE_TOL_PX)


def test_the_transform_by_hand_is_not_the_identity() -> None:
    # guards the premise: crop offset, letterbox pad and scale all move points
    scale_x, scale_y, pad_x, pad_y = hand_transform("letterbox")
    assert pad_y == 32 and pad_x == 0 and scale_x == pytest.approx(256 / 240)
    # (90 - 40 + 0.5) * 256 / 240 - 0.5 and (170 - 30 + 0.5) * 192 / 180 - 0.5 + 32
    assert to_model(TIP, "letterbox") == pytest.approx((53.367, 181.367), abs=1e-3)
    stretch_x, stretch_y, _, _ = hand_transform("stretch")
    assert stretch_y / stretch_x == pytest.approx(4 / 3)  # anisotropic


def test_infer_cli_writes_the_scene_into_results_jsonl(tmp_path: Path) -> None:
    from fluoro_perception.cli.main import main

    frames = tmp_path / "frames"
    frames.mkdir()
    assert cv2.imwrite(str(frames / "scene.png"), scene_image())
    model = write_scene_onnx(tmp_path / "scene.onnx", "letterbox")
    output = tmp_path / "out"
    argv = ["infer", str(frames), "--output", str(output), "--model", str(model),
            "--providers", "cpu", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    (line,) = (output / "results.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)  # plain JSON, read without the project's reader
    assert record["frame"] == "scene"
    (wire,) = record["wires"]
    check_wire(wire["centerline_px"], wire["tip_px"], wire["tip_direction_rad"])
    (stent,) = record["stents"]
    check_stent_pose(stent["centroid_px"], stent["axis_rad"])
    check_stent_outline(stent["outline_px"])
    mask = cv2.imread(str(output / "masks" / "scene_guidewire.png"), cv2.IMREAD_UNCHANGED)
    middle = np.round(np.add(TIP, WIRE_END) / 2).astype(int)
    assert mask.shape == IMAGE_SHAPE and mask[middle[1], middle[0]] == 255


def _yaw(quaternion) -> float:
    assert quaternion.x == 0.0 and quaternion.y == 0.0  # a rotation about +z only
    return 2.0 * math.atan2(quaternion.z, quaternion.w)


def test_ros_messages_carry_the_scene_in_metres() -> None:
    pytest.importorskip("rclpy")
    from fluoro_perception.nodes import conversions as conv

    engine = SceneEngine("letterbox", scene_outputs("letterbox"))
    config = PipelineConfig(tracker=TrackerConfig(min_hits_to_confirm=1))
    pipeline = PerceptionPipeline(engine, config)
    pipeline.process(scene_image(), STAMP_NS)
    result = pipeline.process(scene_image(), STAMP_NS + 100_000_000)
    header = conv.make_header(STAMP_NS + 100_000_000, "detector")
    messages = dict(
        conv.pose_messages(
            result, header, pixel_spacing_m=SPACING_M, min_tip_confidence=0.0,
            tracking_enabled=True,
        )
    )  # fmt: skip

    def pixels(position) -> tuple[float, float]:
        assert position.z == 0.0
        return position.x / SPACING_M, position.y / SPACING_M

    tip_pose = messages["tip"].pose
    path = messages["centerline"]
    centerline = np.array([pixels(p.pose.position) for p in path.poses])
    check_wire(centerline, pixels(tip_pose.position), _yaw(tip_pose.orientation))
    assert pixels(path.poses[0].pose.position) == pytest.approx(pixels(tip_pose.position))
    (tip_of_array,) = messages["tips"].poses
    assert pixels(tip_of_array.position) == pytest.approx(pixels(tip_pose.position))
    tracked = messages["tip_tracked"].pose.pose
    assert math.dist(pixels(tracked.position), TIP) < TIP_TOL_PX
    stent_pose = messages["stent_pose"].pose
    check_stent_pose(pixels(stent_pose.position), _yaw(stent_pose.orientation))
    outline = [(p.x / SPACING_M, p.y / SPACING_M) for p in messages["stent_outline"].polygon.points]
    check_stent_outline(np.array(outline))
    for key in ("tip", "centerline", "stent_pose", "stent_outline", "tip_tracked"):
        assert conv.stamp_to_ns(messages[key].header.stamp) == STAMP_NS + 100_000_000
    # the RViz markers draw the same centerline
    markers = conv.markers_msg(result, SPACING_M, header).markers
    (line,) = [m for m in markers if m.ns.endswith("/guidewire")]
    strip = np.array([(p.x / SPACING_M, p.y / SPACING_M) for p in line.points])
    np.testing.assert_allclose(strip, centerline, atol=1e-6)


def test_model_without_a_tip_head_finds_the_wire_and_takes_the_inner_end() -> None:
    # no heatmap: an end at the field border is proximal, the inner end is the tip
    border_end = (float(FIELD_BOX[2] - 1), 70.0)  # on the field's right edge
    outputs = scene_outputs("letterbox", wires=[(TIP, border_end)], tip_head=False)
    engine = SceneEngine("letterbox", outputs)
    assert engine.metadata.heads == ("logits",)
    result = PerceptionPipeline(engine).process(scene_image(), STAMP_NS)
    assert result.tip_heatmap is None
    (wire,) = result.wires
    assert math.dist(wire.tip_px, TIP) < TIP_TOL_PX
    distances = distance_to_segment(wire.centerline_px.astype(float), TIP, border_end)
    assert distances.max() < 1.5  # the end runs into the field's edge
    # without a tip head the confidence is the wire probability along the centerline
    assert wire.confidence > 0.95


def test_five_class_model_the_vessel_class_is_neither_wire_nor_stent() -> None:
    # the 4-class scene plus a vessel class: a filled vessel 7 px wide running along the
    # wire (its lumen overlaps the wire, which keeps the higher wire logit) and a branch
    # away from it; the vessel is a label of its own, in no mask, and changes no output
    start, end = (100.0, 100.0), (220.0, 150.0)
    four = scene_outputs("letterbox", wires=[(start, end)], catheter_end=end, tip_head=False)
    vessel = np.full((1, 1, *MODEL_SHAPE), -8.0, np.float32)
    lumen = _line_mask(to_model(start, "letterbox"), to_model(end, "letterbox"), 7)
    branch = _line_mask(
        to_model((100.0, 220.0), "letterbox"), to_model((220.0, 260.0), "letterbox"), 5
    )
    vessel[0, 0][lumen | branch] = 9.0
    outputs = {"logits": np.concatenate([four["logits"], vessel], axis=1)}
    engine = SceneEngine("letterbox", outputs)
    assert engine.metadata.classes[4] == "vessel"
    result = PerceptionPipeline(engine).process(scene_image(), STAMP_NS)
    reference = PerceptionPipeline(SceneEngine("letterbox", four)).process(scene_image(), STAMP_NS)
    (wire,), (expected,) = result.wires, reference.wires
    np.testing.assert_allclose(wire.centerline_px, expected.centerline_px, atol=1e-4)
    np.testing.assert_array_equal(result.guidewire_mask, reference.guidewire_mask)
    np.testing.assert_array_equal(result.stent_mask, reference.stent_mask)
    vessel_label = result.labels == 4
    assert vessel_label.sum() > 300 and result.labels.max() == 4
    assert (
        not result.guidewire_mask[vessel_label].any() and not result.stent_mask[vessel_label].any()
    )


@pytest.mark.parametrize("catheter_at", ["tip_end", "other_end"])
def test_four_class_model_the_catheter_output_decides_the_tip(catheter_at: str) -> None:
    # a straight wire without a tip head: both ends score alike but for the catheter
    # (the end inside the catheter is proximal), so which end is the tip follows it
    start, end = (100.0, 100.0), (220.0, 150.0)
    inside = end if catheter_at == "tip_end" else start
    outputs = scene_outputs(
        "letterbox", wires=[(start, end)], stent=False, catheter_end=inside, tip_head=False
    )
    engine = SceneEngine("letterbox", outputs)
    assert engine.metadata.classes[3] == "catheter"
    result = PerceptionPipeline(engine).process(scene_image(), STAMP_NS)
    (wire,) = result.wires
    free_end = start if inside == end else end
    assert math.dist(wire.tip_px, free_end) < TIP_TOL_PX, (wire.tip_px, free_end)
    # the catheter is a class of its own in the label map, in neither mask
    catheter = result.labels == 3
    assert catheter.sum() > 100
    assert not result.guidewire_mask[catheter].any() and not result.stent_mask.any()
    assert result.labels.max() == 3
    # the same maps with the catheter class ignored: no catheter information, so the
    # choice no longer depends on where the catheter is
    ignoring = PerceptionPipeline(engine, PipelineConfig(use_catheter_class=False))
    other = PerceptionPipeline(
        SceneEngine(
            "letterbox",
            scene_outputs(
                "letterbox",
                wires=[(start, end)],
                stent=False,
                catheter_end=free_end,
                tip_head=False,
            ),
        ),  # fmt: skip
        PipelineConfig(use_catheter_class=False),
    )
    tip_a = ignoring.process(scene_image(), STAMP_NS).wires[0].tip_px
    tip_b = other.process(scene_image(), STAMP_NS).wires[0].tip_px
    assert math.dist(tip_a, tip_b) < 1.0


def test_min_tip_confidence_decides_which_wires_the_tracker_gets() -> None:
    # a long wire (confidence ~1) and a short one (~30 px: confidence ~0.5 from its
    # length); the tracker gets only wires at or above min_tip_confidence
    long_wire = (TIP, WIRE_END)
    short_wire = ((120.0, 60.0), (150.0, 60.0))
    engine = SceneEngine(
        "letterbox", scene_outputs("letterbox", wires=[long_wire, short_wire], stent=False)
    )
    tracker = TrackerConfig(min_hits_to_confirm=1)

    def tracks(threshold: float):
        pipeline = PerceptionPipeline(
            engine, PipelineConfig(tracker=tracker, min_tip_confidence=threshold)
        )
        for k in range(3):
            result = pipeline.process(scene_image(), STAMP_NS + k * 100_000_000)
        return result

    result = tracks(0.8)
    confidences = sorted(w.confidence for w in result.wires)
    assert len(confidences) == 2 and confidences[0] < 0.8 <= confidences[1], confidences
    (track,) = result.tracks  # only the confident wire's tip is tracked
    assert math.dist(track.position_px, TIP) < TIP_TOL_PX
    result = tracks(0.2)  # both wires clear the threshold
    assert len(result.tracks) == 2
    tips = sorted(tuple(np.round(w.tip_px)) for w in result.wires)
    tracked = sorted(tuple(np.round(t.position_px)) for t in result.tracks)
    for tip, position in zip(tips, tracked, strict=True):
        assert math.dist(tip, position) < TIP_TOL_PX
    result = tracks(1.0)  # nothing is confident enough: the wires are reported, untracked
    assert len(result.wires) == 2 and result.tracks == []
