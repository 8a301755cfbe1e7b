"""Cost caps of the geometry (each bites on a map built to exceed it, and is counted) and
stent outlines that are always valid polygons, on adversarial maps.

No timing assertions: what the caps buy in time is measured by ``fluoro-perception
bench --content ...`` (docs/benchmarks.md), not held by a unit test.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from fluoro_perception.core.geometry import (
    GEOMETRY_CAPS,
    GeometryConfig,
    extract_stents,
    extract_wires,
    new_caps_hit,
)
from fluoro_perception.core.model_metadata import ModelMetadata, PreprocessSpec
from fluoro_perception.core.pipeline import PerceptionPipeline, PipelineConfig

SIZE = 128


def _lines(segments, size=SIZE, thickness=3) -> np.ndarray:
    """(size, size) float32 map with straight segments ((x0, y0), (x1, y1)) at 1.0."""
    canvas = np.zeros((size, size), np.uint8)
    for start, end in segments:
        cv2.line(canvas, start, end, 1, thickness)
    return canvas.astype(np.float32)


def _wires(prob, config, **kwargs):
    caps = new_caps_hit()
    return extract_wires(prob, None, config, caps_hit=caps, **kwargs), caps


def test_new_caps_hit_has_every_cap_at_zero() -> None:
    assert new_caps_hit() == dict.fromkeys(GEOMETRY_CAPS, 0)
    assert set(GEOMETRY_CAPS) == {
        "wire_components",
        "wide_components",
        "skeleton_px",
        "graph_nodes",
        "wire_chains",
        "stents",
    }


def test_no_cap_bites_on_two_plain_wires() -> None:
    wires, caps = _wires(_lines([((10, 20), (110, 30)), ((10, 90), (115, 100))]), GeometryConfig())
    assert len(wires) == 2
    assert caps == new_caps_hit()


def test_wire_components_cap_keeps_the_longest() -> None:
    # 12 separate horizontal lines, lengths 25 + 5 k px; the longest is k = 11
    segments = [((5, 5 + 10 * k), (30 + 5 * k, 5 + 10 * k)) for k in range(12)]
    config = GeometryConfig(max_wire_components=3, max_wires=1)
    wires, caps = _wires(_lines(segments), config)
    assert caps["wire_components"] == 9
    assert len(wires) == 1
    # one of the 3 longest lines (rows 95, 105, 115, drawn 70-80 px long)
    assert round(float(wires[0].centerline_px[:, 1].mean())) in (95, 105, 115)
    assert wires[0].length_px > 60
    assert sum(caps.values()) == 9  # nothing else bit


def test_wide_components_are_skipped_and_counted() -> None:
    prob = _lines([((10, 110), (120, 115))])
    cv2.circle(prob, (60, 50), 30, 1.0, -1)  # a blob 60 px wide
    wires, caps = _wires(prob, GeometryConfig(max_wires=2))
    assert caps["wide_components"] == 1
    assert len(wires) == 1 and wires[0].centerline_px[:, 1].min() > 100  # the line only
    # 0 disables the check: the blob is traced too (its skeleton is a point or a stub)
    _, caps_off = _wires(prob, GeometryConfig(max_component_width_px=0.0))
    assert caps_off["wide_components"] == 0


def test_skeleton_px_cap_drops_what_does_not_fit() -> None:
    prob = _lines([((5, 20), (120, 20)), ((5, 60), (100, 60)), ((5, 100), (60, 100))])
    # the ~115 px skeleton fits in 185 px, the ~95 px one no longer does, the ~55 px does
    wires, caps = _wires(prob, GeometryConfig(max_skeleton_px=185, max_wires=3))
    assert caps["skeleton_px"] == 1
    rows = sorted(round(float(w.centerline_px[:, 1].mean())) for w in wires)
    assert rows == [20, 100]


def _combs(count: int, size: int = SIZE) -> np.ndarray:
    """``count`` 1 px combs (a 100 px spine with 8 teeth of 6 px, 10 px apart), one per
    12 rows: each has 148 skeleton pixels and 42 graph node pixels (10 ends, 4 junction
    pixels where each tooth meets the spine)."""
    prob = np.zeros((size, size), np.float32)
    for k in range(count):
        y = 8 + 12 * k
        prob[y, 10:110] = 1.0
        for t in range(8):
            prob[y + 1 : y + 7, 20 + 10 * t] = 1.0
    return prob


def test_graph_nodes_cap_takes_components_in_order_while_they_fit() -> None:
    prob = _combs(3)
    prob[60, 10:70] = 1.0  # a plain 60 px line: 2 node pixels (its ends)
    # components ranked by their longest side: the three combs (100 px), then the line
    config = GeometryConfig(max_graph_nodes=86, max_wires=4, min_component_px=0)
    wires, caps = _wires(prob, config)
    # two combs (84 node pixels) fit, the third does not (126 > 86), the line does (86)
    assert caps["graph_nodes"] == 1
    assert caps["skeleton_px"] == 0
    rows = sorted({round(float(np.median(w.centerline_px[:, 1]))) for w in wires})
    assert rows == [8, 20, 60]


def test_graph_nodes_cap_that_does_not_bite_changes_nothing() -> None:
    prob = _combs(3)
    prob[60, 10:70] = 1.0
    config = GeometryConfig(max_wires=4, min_component_px=0)
    wires, caps = _wires(prob, config)
    assert caps == new_caps_hit()  # 128 node pixels, within the default 400
    exact, exact_caps = _wires(prob, dataclasses.replace(config, max_graph_nodes=128))
    assert exact_caps == new_caps_hit()
    assert len(exact) == len(wires) == 4
    for a, b in zip(wires, exact, strict=True):
        np.testing.assert_array_equal(a.centerline_px, b.centerline_px)
        assert a.confidence == b.confidence
    _, below = _wires(prob, dataclasses.replace(config, max_graph_nodes=127))
    assert below["graph_nodes"] == 1  # the line (last in order) no longer fits


def test_skeleton_px_cap_is_counted_before_graph_nodes() -> None:
    # the second comb fits neither cap: counted once, under skeleton_px
    config = GeometryConfig(max_skeleton_px=200, max_graph_nodes=50, min_component_px=0)
    wires, caps = _wires(_combs(2), config)
    assert (caps["skeleton_px"], caps["graph_nodes"]) == (1, 0)
    assert len(wires) >= 1 and all(w.centerline_px[:, 1].max() < 16 for w in wires)


def test_wire_chains_cap_bites_and_is_counted() -> None:
    segments = [((5, 5 + 12 * k), (60, 5 + 12 * k)) for k in range(10)]
    config = GeometryConfig(max_wire_chains=4, max_wires=2)
    wires, caps = _wires(_lines(segments), config)
    assert caps["wire_chains"] == 6
    assert len(wires) == 2


def test_caps_accumulate_into_a_given_counter() -> None:
    segments = [((5, 5 + 10 * k), (40, 5 + 10 * k)) for k in range(6)]
    config = GeometryConfig(max_wire_components=2)
    caps = new_caps_hit()
    for _ in range(3):
        extract_wires(_lines(segments), None, config, caps_hit=caps)
    assert caps["wire_components"] == 12


def test_stents_cap_reports_the_largest_and_counts_the_rest() -> None:
    prob = np.zeros((SIZE, SIZE), np.float32)
    sides = [4 + k for k in range(12)]  # squares of 16 .. 225 px^2
    for k, side in enumerate(sides):
        x, y = 4 + (k % 4) * 31, 4 + (k // 4) * 40
        prob[y : y + side, x : x + side] = 0.9
    caps = new_caps_hit()
    stents = extract_stents(prob, GeometryConfig(stent_min_area_px=10), caps_hit=caps)
    assert len(stents) == 8
    assert caps["stents"] == 4
    assert min(s.length_px for s in stents) >= sides[4]  # the 8 largest
    assert [s.stent_id for s in stents] == list(range(8))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_wire_components", 0),
        ("max_skeleton_px", 0),
        ("max_graph_nodes", 0),
        ("max_graph_nodes", 2.0),
        ("max_wire_chains", 1.5),
        ("max_stents", True),
        ("max_component_width_px", -1.0),
        ("max_component_width_px", float("nan")),
    ],
)
def test_cap_fields_are_validated(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"GeometryConfig.{field}="):
        GeometryConfig(**{field: value})


# ------------------------------------------------------------------ stent outlines


def _assert_valid_outlines(stents) -> None:
    for stent in stents:
        outline = np.asarray(stent.outline_px, np.float64)
        assert outline.ndim == 2 and outline.shape[1] == 2
        assert len(np.unique(outline, axis=0)) >= 3, outline
        x, y = outline[:, 0], outline[:, 1]
        area = 0.5 * abs(x @ np.roll(y, -1) - y @ np.roll(x, -1))
        assert area > 0, outline
        assert np.isfinite(outline).all()


@pytest.mark.parametrize("close_px", [0, 5])
def test_stent_outlines_of_tiny_thin_and_border_blobs_are_polygons(close_px: int) -> None:
    config = GeometryConfig(stent_min_area_px=0, stent_close_px=close_px)
    prob = np.zeros((64, 64), np.float32)
    prob[10, 5:45] = 1.0  # 1 px wide line: its contour folds onto a segment
    prob[20:22, 5:45] = 1.0  # 2 px wide line
    prob[30, 30] = 1.0  # 1 px blob (below the 3 px minimum: never reported)
    prob[40, 40:42] = 1.0  # 2 px blob
    prob[50, 10:13] = 1.0  # 3 px blob
    prob[55:58, 0] = 1.0  # touching the left border
    prob[0, 50:53] = 1.0  # touching the top border
    prob[60:64, 60:64] = 1.0  # in the corner
    stents = extract_stents(prob, config)
    assert stents, "the lines and 3 px blobs are instances"
    _assert_valid_outlines(stents)


def test_stent_outlines_valid_on_random_speckle_maps() -> None:
    rng = np.random.default_rng(3)
    config = GeometryConfig(stent_min_area_px=0, stent_close_px=0, max_stents=1000)
    reported = 0
    for _ in range(20):
        prob = (rng.random((48, 48)) > 0.93).astype(np.float32)  # 1-3 px specks
        for _ in range(3):  # a few thin strokes, some at the border
            x0, y0, x1, y1 = (int(v) for v in rng.integers(0, 48, 4))
            cv2.line(prob, (x0, y0), (x1, y1), 1.0, 1)
        stents = extract_stents(prob, config)
        _assert_valid_outlines(stents)
        reported += len(stents)
    assert reported > 100  # the maps did produce many small instances


def test_stent_outlines_valid_on_saturated_and_noise_maps() -> None:
    rng = np.random.default_rng(0)
    config = GeometryConfig()
    for prob in (np.ones((96, 96), np.float32), rng.random((96, 96)).astype(np.float32)):
        caps = new_caps_hit()
        stents = extract_stents(prob, config, caps_hit=caps)
        assert 1 <= len(stents) <= config.max_stents
        _assert_valid_outlines(stents)


# ------------------------------------------------------------------ pipeline


class _LabelEngine:
    """Test double: fixed logits that segment ``labels`` (model grid = input grid)."""

    def __init__(self, labels: np.ndarray) -> None:
        size = labels.shape
        self.metadata = ModelMetadata(
            architecture="label_double",
            classes=("background", "guidewire", "stent"),
            heads=("logits",),
            stride=16,
            preprocessing=PreprocessSpec(input_size=size),
        )
        self.input_shape = size
        self.logits = np.full((1, 3, *size), -6.0, np.float32)
        for class_index in range(3):
            self.logits[0, class_index][labels == class_index] = 6.0

    def run(self, net_input: np.ndarray) -> dict[str, np.ndarray]:
        return {"logits": self.logits}


def test_pipeline_reports_the_caps_of_each_frame() -> None:
    labels = np.zeros((SIZE, SIZE), np.uint8)
    for k in range(6):
        labels[10 + 18 * k : 13 + 18 * k, 10 : 40 + 10 * k] = 1  # 6 wire pieces
    for k in range(3):
        labels[112:124, 10 + 30 * k : 22 + 30 * k] = 2  # 3 stents
    geometry = GeometryConfig(max_wire_components=2, max_stents=2)
    pipeline = PerceptionPipeline(_LabelEngine(labels), PipelineConfig(geometry=geometry))
    result = pipeline.process(np.full((SIZE, SIZE), 128, np.uint8), 1)
    assert set(result.geometry_caps_hit) == set(GEOMETRY_CAPS)
    assert result.geometry_caps_hit["wire_components"] == 4
    assert result.geometry_caps_hit["stents"] == 1
    assert len(result.stents) == 2
    # a config without caps that bite reports zeros
    relaxed = dataclasses.replace(geometry, max_wire_components=24, max_stents=8)
    pipeline = PerceptionPipeline(_LabelEngine(labels), PipelineConfig(geometry=relaxed))
    assert pipeline.process(np.full((SIZE, SIZE), 128, np.uint8), 2).geometry_caps_hit == (
        new_caps_hit()
    )


def test_node_stats_count_frames_in_which_each_cap_bit() -> None:
    pytest.importorskip("rclpy")
    from fluoro_perception.nodes.segmentation_node import PerceptionStats

    stats = PerceptionStats()
    keys = {f"geometry_caps_hit_{name}" for name in GEOMETRY_CAPS}
    assert {k: v for k, v in stats.snapshot(0.0).items() if k in keys} == dict.fromkeys(keys, 0)
    stats.note_geometry_caps({**new_caps_hit(), "wire_components": 5, "stents": 1})
    stats.note_geometry_caps({**new_caps_hit(), "stents": 3})
    stats.note_geometry_caps(new_caps_hit())
    values = stats.snapshot(0.0)
    assert values["geometry_caps_hit_wire_components"] == 1
    assert values["geometry_caps_hit_stents"] == 2
    assert values["geometry_caps_hit_skeleton_px"] == 0
