"""Tests of guidewire and stent geometry on shapes drawn with OpenCV (small canvases)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fluoro_perception.core.geometry import (
    GeometryConfig,
    clean_mask,
    extract_stents,
    extract_wires,
)
from fluoro_perception.core.geometry.chains import _touched_labels
from fluoro_perception.core.geometry.polyline import (
    _clip_to_grid,
    _cumulative_arc,
    _step_lengths,
    _trim,
)
from fluoro_perception.core.geometry.skeleton_graph import _skeleton_edges

SIZE = 128


def draw_wires(polylines, size=SIZE, thickness=3) -> np.ndarray:
    """(size, size) float32 probability map with the polylines drawn at 1.0."""
    canvas = np.zeros((size, size), np.uint8)
    for points in polylines:
        polyline = np.rint(np.asarray(points, np.float64)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [polyline], False, 1, thickness)
    return canvas.astype(np.float32)


def dense(points, step=0.1) -> np.ndarray:
    """Densely sampled polyline through the pixel-rounded ``points`` (N, 2), as drawn."""
    points = np.rint(np.asarray(points, np.float64))
    pieces = []
    for a, b in zip(points[:-1], points[1:], strict=True):
        count = max(2, int(math.hypot(*(b - a)) / step))
        t = np.linspace(0.0, 1.0, count)[:, None]
        pieces.append(a + t * (b - a))
    return np.concatenate(pieces)


def distances_to(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance of every point to the nearest reference sample [px]."""
    diff = points[:, None, :] - reference[None, :, :]
    return np.sqrt((diff**2).sum(-1)).min(axis=1)


def gaussian(center, sigma=2.0, size=SIZE) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    return np.exp(-((xs - center[0]) ** 2 + (ys - center[1]) ** 2) / (2 * sigma**2)).astype(
        np.float32
    )


ARC = [(64 + 40 * math.cos(a), 100 - 40 * math.sin(a)) for a in np.linspace(0.3, math.pi - 0.3, 25)]
J_TIP = [(20, 115), (20, 40), (22, 30), (28, 23), (36, 21), (44, 23), (48, 30), (49, 36)]


@pytest.mark.parametrize(
    ("name", "points"),
    [
        ("straight", [(20, 30), (100, 90)]),
        ("vertical", [(64, 10), (64, 118)]),
        ("arc", ARC),
        ("j_tip", J_TIP),
    ],
)
def test_centerline_follows_drawn_polyline(name, points):
    wires = extract_wires(draw_wires([points]), None, GeometryConfig())
    assert len(wires) == 1, name
    centerline = wires[0].centerline_px.astype(np.float64)
    reference = dense(points)
    # Every centerline point lies on the drawn line ...
    assert distances_to(centerline, reference).max() < 1.0
    # ... the whole line is covered except a pixel or two at the rounded ends ...
    assert distances_to(reference, centerline).max() < 2.5
    # ... and the points are ordered along it at ~1 px spacing.
    steps = np.hypot(*np.diff(centerline, axis=0).T)
    assert steps.min() > 0.5 and steps.max() < 1.5
    drawn_length = np.hypot(*np.diff(reference, axis=0).T).sum()
    assert abs(wires[0].length_px - drawn_length) < 4.0
    np.testing.assert_array_equal(wires[0].tip_px, wires[0].centerline_px[0])


def _tube_image(x_from, x_to, y=64, tube_width=7):
    """Background 0.7, a dark tube (catheter) 0.35 between x_from..x_to, wire 0.15."""
    image = np.full((SIZE, SIZE), 0.7, np.float32)
    cv2.line(image, (x_from, y), (x_to, y), 0.35, tube_width)
    cv2.line(image, (20, y), (100, y), 0.15, 2)
    return image


@pytest.mark.parametrize(
    ("name", "points", "kwargs", "expected_tip"),
    [
        # One end touches the image border: it is proximal.
        ("left_border", [(0, 64), (80, 64)], {}, (80, 64)),
        ("bottom_border", [(50, 20), (50, 127)], {}, (50, 20)),
        # Geometry is ambiguous: the tip heatmap decides.
        ("heatmap_left", [(20, 64), (100, 64)], {"tip_prob": gaussian((20, 64))}, (20, 64)),
        ("heatmap_right", [(20, 64), (100, 64)], {"tip_prob": gaussian((100, 64))}, (100, 64)),
        # An end inside a catheter (dark tube continuing beyond it) is proximal.
        ("catheter_right", [(20, 64), (100, 64)], {"image": _tube_image(96, 127)}, (20, 64)),
        ("catheter_left", [(20, 64), (100, 64)], {"image": _tube_image(0, 24)}, (100, 64)),
        (
            "catheter_prob",
            [(20, 64), (100, 64)],
            {"catheter_prob": draw_wires([[(100, 64), (127, 64)]], thickness=7)},
            (20, 64),
        ),
        # No border, heatmap or catheter: the curved (J) end is distal.
        ("j_tip_curvature", J_TIP, {}, (49, 36)),
        # The border beats a weak heatmap at the border end.
        (
            "border_beats_heatmap",
            [(0, 64), (80, 64)],
            {"tip_prob": 0.5 * gaussian((0, 64))},
            (80, 64),
        ),
    ],
)
def test_distal_tip_choice(name, points, kwargs, expected_tip):
    wire_prob = draw_wires([points])
    tip_prob = kwargs.pop("tip_prob", None)
    wires = extract_wires(wire_prob, tip_prob, GeometryConfig(), **kwargs)
    assert len(wires) == 1, name
    assert np.hypot(*(wires[0].tip_px - np.array(expected_tip))) < 2.5, (name, wires[0].tip_px)


def test_end_at_field_edge_is_proximal():
    field = np.zeros((SIZE, SIZE), bool)
    cv2.circle(field.view(np.uint8), (64, 64), 50, 1, -1)
    wire_prob = draw_wires([[(64, 0), (64, 90)]])  # enters the field from the top
    wires = extract_wires(wire_prob, None, GeometryConfig(), field_mask=field)
    assert len(wires) == 1
    np.testing.assert_allclose(wires[0].tip_px, (64, 90), atol=2.0)
    # Nothing outside the field is kept.
    assert wires[0].centerline_px[:, 1].min() >= 64 - 50 - 1


@pytest.mark.parametrize(
    ("name", "line_a", "line_b"),
    [
        ("x_90deg", [(20, 20), (108, 108)], [(20, 108), (108, 20)]),
        ("x_40deg", [(10, 20), (118, 100)], [(10, 100), (118, 30)]),
        ("x_24deg_shallow", [(5, 50), (123, 70)], [(5, 75), (123, 45)]),
        ("t_like_cross", [(64, 5), (64, 123)], [(5, 40), (123, 90)]),
    ],
)
def test_two_crossing_wires_are_two_instances(name, line_a, line_b):
    wires = extract_wires(draw_wires([line_a, line_b]), None, GeometryConfig(max_wires=2))
    assert len(wires) == 2, name
    references = [dense(line_a), dense(line_b)]
    for reference in references:
        # Exactly one wire follows this line from end to end.
        followers = [
            w
            for w in wires
            if distances_to(w.centerline_px.astype(np.float64), reference).max() < 1.5
        ]
        assert len(followers) == 1, name
        assert distances_to(reference, followers[0].centerline_px.astype(np.float64)).max() < 2.5


ALPHA_LOOP = [(10, 110), (50, 70), (80, 40), (95, 30), (105, 40), (100, 55), (80, 60), (60, 50)]
ALPHA_LOOP += [(45, 35), (35, 15)]


def test_wire_crossing_itself_stays_one_ordered_wire():
    wires = extract_wires(draw_wires([ALPHA_LOOP]), None, GeometryConfig(max_wires=3))
    assert len(wires) == 1
    reference = dense(ALPHA_LOOP)
    centerline = wires[0].centerline_px.astype(np.float64)
    assert distances_to(centerline, reference).max() < 1.5
    assert distances_to(reference, centerline).max() < 2.5
    drawn_length = np.hypot(*np.diff(reference, axis=0).T).sum()
    assert wires[0].length_px == pytest.approx(drawn_length, abs=5.0)


@pytest.mark.parametrize("hole_fill_px", [0, 6])
def test_pin_holes_in_a_thick_wire_do_not_split_it(hole_fill_px):
    wire_prob = draw_wires([[(10, 64), (118, 64)]], thickness=5)
    wire_prob[64, 60] = 0.0
    wire_prob[63:65, 90] = 0.0
    config = GeometryConfig(hole_fill_px=hole_fill_px, max_wires=3)
    wires = extract_wires(wire_prob, None, config)
    assert len(wires) == 1
    assert wires[0].length_px > 118 - 10 - 4
    np.testing.assert_allclose(wires[0].centerline_px[:, 1], 64.0, atol=1.0)


@pytest.mark.parametrize(("gap_px", "expected_wires"), [(6, 1), (40, 2)])
def test_gap_bridging(gap_px, expected_wires):
    left_end = 60 - gap_px // 2
    right_start = left_end + gap_px
    wire_prob = draw_wires([[(5, 64), (left_end, 64)], [(right_start, 64), (122, 64)]])
    wires = extract_wires(wire_prob, None, GeometryConfig(gap_bridge_px=15.0, max_wires=3))
    assert len(wires) == expected_wires
    if expected_wires == 1:
        assert wires[0].length_px > 122 - 5 - 4
        # The bridge lies on the line.
        np.testing.assert_allclose(wires[0].centerline_px[:, 1], 64.0, atol=0.5)


def test_gap_not_bridged_when_ends_are_not_collinear():
    # 6 px apart but the second piece is offset sideways and runs at 45 deg away.
    wire_prob = draw_wires([[(5, 64), (57, 64)], [(63, 70), (110, 117)]])
    wires = extract_wires(wire_prob, None, GeometryConfig(max_wires=3))
    assert len(wires) == 2


def test_wire_cut_by_steep_struts_with_a_sideways_jog_is_one_wire():
    """Struts of a large stent cut a thick wire every ~20 px at a slant; the skeleton ends
    bend along the slanted cuts, so the short gaps look steep: still one wire."""
    wire_prob = draw_wires([[(5, 64), (122, 64)]], thickness=4)
    for x in range(20, 110, 20):
        cv2.line(wire_prob, (x - 5, 57), (x + 5, 71), 0.0, 2)  # a strut over the wire
    strict = extract_wires(wire_prob, None, GeometryConfig(max_wires=3, gap_lateral_px=0.0))
    assert max((w.length_px for w in strict), default=0.0) < 40  # fragments only
    wires = extract_wires(wire_prob, None, GeometryConfig(max_wires=3))
    assert len(wires) == 1 and wires[0].length_px > 100
    np.testing.assert_allclose(wires[0].centerline_px[:, 1], 64.0, atol=1.5)


def stent_block(center, size=(40, 14)) -> np.ndarray:
    stent = np.zeros((SIZE, SIZE), np.float32)
    x, y = center
    stent[y - size[1] // 2 : y + size[1] // 2, x - size[0] // 2 : x + size[0] // 2] = 1.0
    return stent


def test_wire_is_bridged_through_a_stent_and_only_through_one():
    # the wire mask stops where the stent (over the wire) takes the label: a 40 px gap
    wire_prob = draw_wires([[(5, 64), (44, 64)], [(84, 64), (122, 64)]])
    stent = stent_block((64, 64))
    config = GeometryConfig(max_wires=3)
    assert len(extract_wires(wire_prob, None, config)) == 2  # 40 px > gap_bridge_px
    wires = extract_wires(wire_prob, None, config, stent_prob=stent)
    assert len(wires) == 1 and wires[0].length_px > 122 - 5 - 4
    np.testing.assert_allclose(wires[0].centerline_px[:, 1], 64.0, atol=1.0)
    # disabled, or the stent elsewhere: no bridge
    off = GeometryConfig(max_wires=3, stent_bridge_px=0.0)
    assert len(extract_wires(wire_prob, None, off, stent_prob=stent)) == 2
    assert len(extract_wires(wire_prob, None, config, stent_prob=stent_block((64, 20)))) == 2
    # the far piece runs off at 90 deg: its end does not point at the near end
    away = draw_wires([[(5, 64), (44, 64)], [(84, 70), (80, 125)]])
    assert len(extract_wires(away, None, config, stent_prob=stent)) == 2


def test_y_fork_gives_both_wires_with_the_shared_trunk():
    """Dual-wire PCI: two wires leave the catheter together and part; the mask is a Y.
    Both are returned, each with the trunk, the fork ranked below the wire it leaves."""
    trunk = [(64, 125), (64, 60)]
    left, right = [(64, 60), (30, 12)], [(64, 60), (100, 12)]
    wire_prob = draw_wires([trunk, left, right])
    tips = np.maximum(gaussian((30, 12)), gaussian((100, 12)))
    wires = extract_wires(wire_prob, tips, GeometryConfig(max_wires=2))
    assert len(wires) == 2
    found = sorted(tuple(np.rint(w.tip_px).astype(int)) for w in wires)
    assert np.allclose(found, [(30, 12), (100, 12)], atol=3)
    for wire in wires:  # each runs down the shared trunk to the proximal end
        assert np.hypot(*(wire.centerline_px[-1] - (64, 125))) < 4
        assert wire.length_px > 100
    assert wires[0].confidence >= wires[1].confidence
    # without forks the second branch is a short wire of its own that stops at the fork
    plain = extract_wires(wire_prob, tips, GeometryConfig(max_wires=2, fork_min_branch_px=0.0))
    assert min(w.length_px for w in plain) < 70
    # one wire requested: no fork
    assert len(extract_wires(wire_prob, tips, GeometryConfig(max_wires=1))) == 1


def test_a_wire_beyond_a_tip_is_not_taken_for_a_catheter():
    """Image-only catheter check: dark pixels beyond an end that are themselves segmented
    as wire (a second wire continuing past the tip) do not make that end proximal. A weak
    tip response (0.3) marks the true tip; a catheter there would outweigh it."""
    first, second = [(20, 64), (80, 64)], [(88, 64), (125, 64)]
    wire_prob = np.maximum(draw_wires([first], thickness=3), draw_wires([second], thickness=5))
    image = np.where(wire_prob > 0, 0.3, 0.8).astype(np.float32)
    tips = 0.3 * gaussian((80, 64))
    config = GeometryConfig(max_wires=3, gap_bridge_px=0.0)
    wires = extract_wires(wire_prob, tips, config, image=image)
    first_wire = [w for w in wires if w.centerline_px[:, 0].max() < 83]
    assert len(first_wire) == 1 and first_wire[0].tip_px[0] > 75
    # the same dark band beyond the tip, but not segmented: a catheter, the end is proximal
    catheter_only = draw_wires([first], thickness=3)
    wires = extract_wires(catheter_only, tips, config, image=image)
    assert len(wires) == 1 and wires[0].tip_px[0] < 25


def test_small_noise_blobs_are_removed():
    rng = np.random.default_rng(0)
    wire_prob = draw_wires([[(10, 64), (118, 64)]])
    for x, y in rng.integers(5, 120, size=(25, 2)):
        if abs(y - 64) > 6:
            wire_prob[y : y + 3, x : x + 3] = 1.0  # 9 px blobs
    wires = extract_wires(wire_prob, None, GeometryConfig(min_component_px=20, max_wires=5))
    assert len(wires) == 1
    np.testing.assert_allclose(wires[0].centerline_px[:, 1], 64.0, atol=0.5)


@pytest.mark.parametrize(
    ("sizes", "min_component_px", "expected_kept"),
    [
        ((4, 25), 20, (False, True)),
        ((4, 25), 1, (True, True)),
        ((20, 19), 20, (True, False)),
    ],
)
def test_clean_mask_removes_components_below_size(sizes, min_component_px, expected_kept):
    mask = np.zeros((20, 60), bool)
    for index, size in enumerate(sizes):
        mask[2, 30 * index : 30 * index + size] = True  # one row of ``size`` px
    cleaned = clean_mask(mask, min_component_px)
    for index, kept in enumerate(expected_kept):
        assert cleaned[2, 30 * index] == kept


@pytest.mark.parametrize("spur_length", [3, 6])
def test_short_spur_is_pruned(spur_length):
    wire_prob = draw_wires([[(10, 64), (118, 64)]])
    cv2.line(wire_prob, (60, 64), (60, 64 + 1 + spur_length), 1.0, 1)
    wires = extract_wires(wire_prob, None, GeometryConfig(spur_length_px=8.0, max_wires=3))
    assert len(wires) == 1
    np.testing.assert_allclose(wires[0].centerline_px[:, 1], 64.0, atol=0.75)


@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 90.0, 135.0, -60.0, 180.0])
def test_tip_direction_of_a_known_line(angle_deg):
    angle = math.radians(angle_deg)
    direction = np.array([math.cos(angle), math.sin(angle)])
    tip = np.array([64.0, 64.0]) + 40 * direction
    body = np.array([64.0, 64.0]) - 40 * direction
    wire_prob = draw_wires([[tuple(np.rint(body)), tuple(np.rint(tip))]])
    wires = extract_wires(wire_prob, gaussian(tip), GeometryConfig())
    assert len(wires) == 1
    error = math.remainder(wires[0].tip_direction_rad - angle, 2 * math.pi)
    assert abs(error) < math.radians(2.0)


def test_confidence_reflects_probability_and_sorting():
    strong = draw_wires([[(10, 30), (118, 30)]])
    weak = 0.6 * draw_wires([[(10, 90), (118, 90)]])
    wires = extract_wires(np.maximum(strong, weak), None, GeometryConfig(max_wires=2))
    assert [round(float(w.centerline_px[:, 1].mean())) for w in wires] == [30, 90]
    assert [w.wire_id for w in wires] == [0, 1]
    assert wires[0].confidence == pytest.approx(1.0, abs=0.02)
    assert wires[1].confidence == pytest.approx(0.6, abs=0.05)
    only_one = extract_wires(np.maximum(strong, weak), None, GeometryConfig(max_wires=1))
    assert len(only_one) == 1 and only_one[0].centerline_px[0, 1] == pytest.approx(30, abs=1)


def test_short_and_empty_inputs_give_no_wire():
    assert extract_wires(np.zeros((32, 32), np.float32), None, GeometryConfig()) == []
    short = draw_wires([[(10, 10), (20, 10)]], size=32)
    assert extract_wires(short, None, GeometryConfig(min_wire_length_px=20)) == []


@pytest.mark.parametrize(
    ("shape_kind", "center", "length", "diameter", "angle_deg"),
    [
        ("rectangle", (64, 64), 60, 16, 0.0),
        ("rectangle", (60, 70), 70, 14, 30.0),
        ("rectangle", (64, 64), 50, 20, -45.0),
        ("rectangle", (64, 64), 60, 12, 90.0),
        ("ellipse", (64, 60), 80, 24, 60.0),
        ("ellipse", (70, 64), 50, 16, -20.0),
    ],
)
def test_stent_axis_length_diameter_centroid(shape_kind, center, length, diameter, angle_deg):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    if shape_kind == "rectangle":
        corners = cv2.boxPoints(((center[0], center[1]), (length, diameter), angle_deg))
        cv2.fillPoly(mask, [np.rint(corners).astype(np.int32)], 1)
        # fillPoly includes the polygon's boundary pixels: the drawn shape is 1 px longer.
        length, diameter = length + 1, diameter + 1
    else:
        axes = (length // 2, diameter // 2)
        cv2.ellipse(mask, center, axes, angle_deg, 0, 360, 1, -1)
        length, diameter = 2 * axes[0] + 1, 2 * axes[1] + 1
    stents = extract_stents(mask.astype(np.float32) * 0.9, GeometryConfig())
    assert len(stents) == 1
    stent = stents[0]
    expected_axis = math.remainder(math.radians(angle_deg), math.pi)
    if expected_axis >= math.pi / 2:
        expected_axis -= math.pi
    axis_error = math.remainder(stent.axis_rad - expected_axis, math.pi)
    assert abs(axis_error) < math.radians(2.0)
    assert -math.pi / 2 <= stent.axis_rad < math.pi / 2
    assert stent.length_px == pytest.approx(length, abs=2.0)
    assert stent.diameter_px == pytest.approx(diameter, abs=2.0)
    np.testing.assert_allclose(stent.centroid_px, center, atol=0.75)
    assert stent.confidence == pytest.approx(0.9, abs=1e-5)
    assert stent.outline_px.ndim == 2 and stent.outline_px.shape[1] == 2
    assert cv2.pointPolygonTest(stent.outline_px.reshape(-1, 1, 2), center, False) > 0


def test_stent_strut_mesh_is_one_instance_and_two_stents_are_two():
    mask = np.zeros((SIZE, SIZE), np.uint8)
    # A mesh of thin zig-zag struts 30..90 x 50..70 with 3 px gaps between them.
    for x in range(30, 91, 4):
        cv2.line(mask, (x, 50), (x + 2, 70), 1, 1)
    cv2.line(mask, (30, 50), (92, 50), 1, 1)
    cv2.line(mask, (30, 70), (92, 70), 1, 1)
    cv2.rectangle(mask, (20, 100), (60, 112), 1, -1)
    stents = extract_stents(mask.astype(np.float32), GeometryConfig(stent_close_px=5))
    assert len(stents) == 2
    mesh = min(stents, key=lambda s: s.centroid_px[1])
    assert abs(mesh.axis_rad) < math.radians(5)
    assert mesh.length_px == pytest.approx(63, abs=3)
    assert mesh.diameter_px == pytest.approx(21, abs=2)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("wire_threshold", 1.5),
        ("min_component_px", -1),
        ("min_component_px", 2.5),
        ("max_wires", 0),
        ("smoothing_window_px", 4),
        ("gap_bridge_px", -1.0),
        ("stent_bridge_px", -5.0),
        ("gap_lateral_px", float("nan")),
        ("stent_touch_px", -1),
        ("fork_min_branch_px", -1.0),
        ("tip_direction_length_px", 0.0),
        ("max_junction_turn_rad", 4.0),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        GeometryConfig(**{field: value})


@pytest.mark.parametrize(
    ("wire_prob", "tip_prob", "error"),
    [
        (np.zeros((1, 32, 32), np.float32), None, ValueError),
        ([[0.0]], None, TypeError),
        (np.zeros((32, 32), np.float32), np.zeros((16, 16), np.float32), ValueError),
    ],
)
def test_bad_inputs_raise(wire_prob, tip_prob, error):
    with pytest.raises(error):
        extract_wires(wire_prob, tip_prob, GeometryConfig())


@pytest.mark.parametrize("seed", range(12))
def test_random_maps_give_well_formed_wires(seed):
    """Blurred noise makes skeletons with many junctions, loops and spurs."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(16, 80))
    noise = rng.random((size, size)).astype(np.float32)
    wire_prob = cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(0.5, 2.0)))
    wire_prob = (wire_prob - wire_prob.min()) / (np.ptp(wire_prob) + 1e-9)
    tip_prob = rng.random((size, size)).astype(np.float32)
    config = GeometryConfig(min_component_px=3, min_wire_length_px=5.0, max_wires=50)
    wires = extract_wires(
        wire_prob,
        tip_prob if seed % 2 else None,
        config,
        field_mask=rng.random((size, size)) > 0.05 if seed % 3 == 0 else None,
        image=rng.random((size, size)).astype(np.float32) if seed % 4 == 0 else None,
    )
    confidences = [wire.confidence for wire in wires]
    assert confidences == sorted(confidences, reverse=True)
    assert [wire.wire_id for wire in wires] == list(range(len(wires)))
    for wire in wires:
        centerline = wire.centerline_px
        assert centerline.dtype == np.float32 and centerline.shape[1] == 2
        assert centerline.min() >= 0 and centerline.max() <= size - 1
        assert 0.0 <= wire.confidence <= 1.0 and math.isfinite(wire.tip_direction_rad)
        assert np.hypot(*np.diff(centerline, axis=0).T).max() < 1.6
        assert wire.length_px >= 5.0 - 1e-6


def _skeleton_of(shape, pixels) -> np.ndarray:
    """Bool skeleton of ``shape`` (zero border) with the ``(x, y)`` pixels set."""
    skeleton = np.zeros(shape, bool)
    for x, y in pixels:
        skeleton[y, x] = True
    return skeleton


def test_skeleton_edges_of_a_junction_cluster_in_walk_order():
    """A line with a branch: the junction is a cluster of four node pixels; edges start
    at the node of lower flat index, nodes in flat order and each node's neighbours by
    descending flat index (node to node: 2-pixel edges)."""
    line = [(x, 3) for x in range(1, 9)]
    skeleton = _skeleton_of((8, 10), [*line, (4, 4), (4, 5), (4, 6)])
    edges, degree, pixel_xy = _skeleton_edges(skeleton)
    expected = [
        [(1, 3), (2, 3), (3, 3)],
        [(3, 3), (4, 4)],
        [(3, 3), (4, 3)],
        [(4, 3), (4, 4)],
        [(4, 3), (5, 3)],
        [(5, 3), (4, 4)],
        [(5, 3), (6, 3), (7, 3), (8, 3)],
        [(4, 4), (4, 5), (4, 6)],
    ]
    assert [edge.points.tolist() for edge in edges] == [
        [list(map(float, p)) for p in path] for path in expected
    ]
    lengths = [2.0, math.sqrt(2), 1.0, 1.0, 1.0, math.sqrt(2), 3.0, 2.0]
    assert [edge.length for edge in edges] == pytest.approx(lengths)
    for edge in edges:  # start / end are pixel indices of the path's ends
        assert pixel_xy[edge.start].tolist() == edge.points[0].tolist()
        assert pixel_xy[edge.end].tolist() == edge.points[-1].tolist()
    by_pixel = {tuple(map(int, xy)): int(d) for xy, d in zip(pixel_xy, degree, strict=True)}
    assert by_pixel[(1, 3)] == 1 and by_pixel[(2, 3)] == 2 and by_pixel[(4, 4)] == 4
    assert by_pixel[(3, 3)] == by_pixel[(4, 3)] == by_pixel[(5, 3)] == 3


def test_skeleton_edges_of_a_loop_and_a_ring_without_nodes():
    """A loop back to its own node is one edge, walked from the node's neighbour of
    higher flat index; a ring without any node pixel is dropped."""
    stick = [(1, 5), (2, 5), (3, 5)]
    loop = [(4, 4), (5, 4), (6, 5), (5, 6), (4, 6)]
    ring = [(2, 1), (3, 2), (2, 3), (1, 2)]
    edges, _, _ = _skeleton_edges(_skeleton_of((8, 9), stick + loop + ring))
    assert [edge.points.tolist() for edge in edges] == [
        [[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]],
        [[3.0, 5.0], [4.0, 6.0], [5.0, 6.0], [6.0, 5.0], [5.0, 4.0], [4.0, 4.0], [3.0, 5.0]],
    ]
    assert edges[1].start == edges[1].end
    assert edges[1].length == pytest.approx(2.0 + 4.0 * math.sqrt(2))


def test_polyline_step_arc_clip_and_trim_known_answers():
    path = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 5.0]])
    assert _step_lengths(path).tolist() == [5.0, 1.0]
    assert _cumulative_arc(path).tolist() == [0.0, 5.0, 6.0]
    points = np.array([[-1.5, 3.0], [25.0, -2.0], [4.0, 12.0]])
    _clip_to_grid(points, (10, 20))  # (H, W): x in [0, 19], y in [0, 9]
    assert points.tolist() == [[0.0, 3.0], [19.0, 0.0], [4.0, 9.0]]
    line = np.stack([np.arange(21.0), np.zeros(21)], axis=1)  # 20 px, 1 px steps
    assert _trim(line, 4.0, at_start=True)[0].tolist() == [4.0, 0.0]
    assert _trim(line, 4.0, at_start=False)[-1].tolist() == [16.0, 0.0]
    # a 4 px path keeps at least half: 2 px trimmed
    assert _trim(line[:5], 4.0, at_start=True).tolist() == [[2.0, 0.0], [3.0, 0.0], [4.0, 0.0]]


def test_touched_labels_reads_each_window_clipped_to_the_grid():
    labels = np.zeros((6, 6), np.int32)
    labels[0, 0], labels[5, 5], labels[2, 3] = 2, 1, 3
    points = np.array([[1.0, 1.0], [4.2, 4.4], [5.0, 0.0], [3.0, 3.0]])
    assert _touched_labels(labels, points, 1).tolist() == [2, 1, 0, 3]
