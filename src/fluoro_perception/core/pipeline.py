"""The staged perception pipeline: preprocess -> infer -> decode -> geometry -> tracking.

Modelled on Isaac ROS image segmentation (encoder -> inference -> decoder), with each
stage a separate, timed call:

``preprocess``
    grey float image, exposed field, crop/resize/normalize
    (:mod:`fluoro_perception.core.preprocess`);
``inference``
    ONNX Runtime (:class:`~fluoro_perception.core.engine.InferenceEngine`);
``decode``
    softmax / sigmoid / argmax on the model grid (numpy float32, buffers reused);
``geometry``
    wires and stents on the model grid, then points mapped back to the **input** grid
    with :meth:`FrameTransform.points_to_input`;
``tracking``
    tip Kalman tracking in the input grid;
``masks``
    label map, 0/255 masks and tip heatmap at input resolution.

Everything is synchronous and per frame: a result always belongs to the stamp it was
computed for, never to a "latest" frame.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from fluoro_perception.core.decode import normalize_encoding, to_mono_float
from fluoro_perception.core.geometry import (
    GeometryConfig,
    extract_stents,
    extract_wires,
    new_caps_hit,
)
from fluoro_perception.core.model_metadata import ModelMetadata
from fluoro_perception.core.preprocess import FrameTransform, Preprocessor
from fluoro_perception.core.tracking import TipTracker, TrackerConfig
from fluoro_perception.core.types import FrameResult, StentDetection, WireDetection

#: GeometryConfig fields that are areas [px^2] (scale with the square of the grid scale).
_AREA_FIELDS = frozenset({"min_component_px", "hole_fill_px", "stent_min_area_px"})
#: Grid scales closer to 1 than this use the configured geometry unchanged.
_SCALE_TOLERANCE = 0.02


class EngineLike(Protocol):
    """What the pipeline needs from an engine (an InferenceEngine or a test double)."""

    metadata: ModelMetadata
    input_shape: tuple[int, int]

    def run(self, net_input: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class PipelineConfig:
    """Options of :class:`PerceptionPipeline`.

    Attributes
    ----------
    geometry : GeometryConfig
        Wire/stent extraction; its lengths are in **input** pixels and are rescaled to
        the model grid when the two differ by more than 2 %.
    tracker : TrackerConfig
        Tip tracking (input pixels).
    tracking_enabled : bool
        False returns no tracks.
    bit_depth : int or None
        Significant bits of ``mono16`` frames (None = auto-detect 12/16 per frame).
    min_tip_confidence : float
        Wires below this confidence are reported but not fed to the tracker, in ``[0, 1]``.
    mask_outside_field : bool
        Force label 0 outside the detected exposed field (ground truth is 0 there too).
    return_tip_heatmap : bool
        Fill ``FrameResult.tip_heatmap`` (input resolution, sigmoid) when the model has a
        tip head.
    use_catheter_class : bool
        Pass the catheter probability to the tip logic when the model has that class.
    max_wire_fraction : float
        When more than this share of the exposed field (model grid) is above the wire
        threshold, the segmentation is implausible for guidewires (a real wire covers
        ~1-3 %) and wire geometry is skipped for the frame: no wire beats a garbage wire
        or a geometry stall (skeleton graphs of noise take seconds). Counted in
        ``PerceptionPipeline.implausible_wire_frames``. In ``(0, 1]``; 1 disables.
    """

    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    tracking_enabled: bool = True
    bit_depth: int | None = None
    min_tip_confidence: float = 0.2
    mask_outside_field: bool = True
    return_tip_heatmap: bool = True
    use_catheter_class: bool = True
    max_wire_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, GeometryConfig):
            raise TypeError(
                f"PipelineConfig.geometry is {type(self.geometry).__name__}; expected GeometryConfig"
            )
        if not isinstance(self.tracker, TrackerConfig):
            raise TypeError(
                f"PipelineConfig.tracker is {type(self.tracker).__name__}; expected TrackerConfig"
            )
        if self.bit_depth is not None and (
            isinstance(self.bit_depth, bool)
            or not isinstance(self.bit_depth, int)
            or not 1 <= self.bit_depth <= 16
        ):
            raise ValueError(
                f"PipelineConfig.bit_depth={self.bit_depth!r}; expected None (auto) or an int in 1..16"
            )
        if not 0.0 < self.max_wire_fraction <= 1.0:
            raise ValueError(
                f"PipelineConfig.max_wire_fraction={self.max_wire_fraction}; expected (0, 1]"
            )
        if not 0.0 <= self.min_tip_confidence <= 1.0:
            raise ValueError(
                f"PipelineConfig.min_tip_confidence={self.min_tip_confidence}; expected [0, 1]"
            )


def scale_geometry_config(config: GeometryConfig, scale: float) -> GeometryConfig:
    """Express a geometry config given in input pixels on a grid ``scale`` times finer.

    Lengths ``*_px`` are multiplied by ``scale``, areas by ``scale**2``; integer fields
    stay integers that satisfy the config's own minimums. Returns ``config`` unchanged
    when the rescaled values would not validate.
    """
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale={scale}; expected a finite number > 0")
    values: dict[str, Any] = {}
    for config_field in dataclasses.fields(config):
        name = config_field.name
        value = getattr(config, name)
        if not name.endswith("_px") or isinstance(value, bool):
            continue
        factor = scale * scale if name in _AREA_FIELDS else scale
        if isinstance(value, int):
            scaled = round(value * factor)
            if value > 0:
                scaled = max(scaled, 1)
            if name == "smoothing_window_px" and value:
                scaled = max(5, scaled | 1)  # odd and >= 5
            if name == "direction_sample_px":
                scaled = max(scaled, 2)
            values[name] = scaled
        elif isinstance(value, float):
            values[name] = value * factor
    try:
        return dataclasses.replace(config, **values)
    except (ValueError, TypeError):
        return config


def _map_direction(angle_rad: float, scale_x: float, scale_y: float) -> float:
    """A model-grid direction [rad] expressed in the input grid (undo per-axis scales)."""
    return math.atan2(math.sin(angle_rad) / scale_y, math.cos(angle_rad) / scale_x)


def _polyline_length(points: np.ndarray) -> float:
    if len(points) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(points.astype(np.float64), axis=0), axis=1).sum())


def wire_to_input(wire: WireDetection, transform: FrameTransform) -> WireDetection:
    """Map a model-grid :class:`WireDetection` to the input grid (positions, angle, length)."""
    centerline = transform.points_to_input(wire.centerline_px).astype(np.float32)  # (N, 2)
    return dataclasses.replace(
        wire,
        centerline_px=centerline,
        tip_px=centerline[0].copy()
        if len(centerline)
        else transform.points_to_input(np.reshape(wire.tip_px, (1, 2)))[0].astype(np.float32),
        tip_direction_rad=_map_direction(
            wire.tip_direction_rad, transform.scale_x, transform.scale_y
        ),
        length_px=_polyline_length(centerline),
    )


def stent_to_input(stent: StentDetection, transform: FrameTransform) -> StentDetection:
    """Map a model-grid :class:`StentDetection` to the input grid.

    On an isotropic grid (letterbox, equal scales) the axis keeps its angle and the
    extents scale. On an anisotropic one (``stretch``) a rectangle becomes a sheared
    shape on the model grid, whose principal axis is not the image of the stent's axis:
    there the axis and extents are measured again on the outline mapped back to the
    input (its area moments give the axis, its extreme vertices the extents).
    """
    outline = transform.points_to_input(stent.outline_px).astype(np.float32)
    centroid = transform.points_to_input(np.reshape(stent.centroid_px, (1, 2)))[0]
    if math.isclose(transform.scale_x, transform.scale_y, rel_tol=1e-9):
        axis = stent.axis_rad
        along = across = 1.0 / transform.scale_x
        length, diameter = stent.length_px * along, stent.diameter_px * across
    else:
        moments = cv2.moments(outline.reshape(-1, 1, 2))
        if moments["m00"] > 0:
            mu20, mu02, mu11 = moments["mu20"], moments["mu02"], moments["mu11"]
            axis = 0.5 * math.atan2(2.0 * mu11, mu20 - mu02)
        else:  # degenerate polygon: fall back to the mapped direction
            axis = _map_direction(stent.axis_rad, transform.scale_x, transform.scale_y)
        # a unit model-grid step along / across the axis is this many input px (the
        # "+1 px" of the extents, which count pixels, not distances between centres)
        along = math.hypot(math.cos(axis) * transform.scale_x, math.sin(axis) * transform.scale_y)
        across = math.hypot(math.sin(axis) * transform.scale_x, math.cos(axis) * transform.scale_y)
        centred = outline - centroid
        unit = np.array([math.cos(axis), math.sin(axis)])
        normal = np.array([-unit[1], unit[0]])
        length = float(np.ptp(centred @ unit)) + 1.0 / along
        diameter = float(np.ptp(centred @ normal)) + 1.0 / across
    # back into [-pi/2, pi/2): an axis has no sign
    axis = (axis + math.pi / 2) % math.pi - math.pi / 2
    return dataclasses.replace(
        stent,
        outline_px=outline,
        centroid_px=centroid.astype(np.float32),
        axis_rad=float(axis),
        length_px=float(length),
        diameter_px=float(diameter),
    )


class PerceptionPipeline:
    """Frame in, :class:`FrameResult` out, every stage timed.

    Parameters
    ----------
    engine : InferenceEngine
        Loaded model (anything with ``metadata``, ``input_shape`` and ``run``).
    config : PipelineConfig
        Pipeline options.
    """

    def __init__(self, engine: EngineLike, config: PipelineConfig | None = None) -> None:
        if config is None:
            config = PipelineConfig()
        if not isinstance(config, PipelineConfig):
            raise TypeError(f"config is {type(config).__name__}; expected PipelineConfig")
        metadata = getattr(engine, "metadata", None)
        if not isinstance(metadata, ModelMetadata) or not callable(getattr(engine, "run", None)):
            raise TypeError(
                f"engine is {type(engine).__name__}; expected an InferenceEngine (metadata + run)"
            )
        self.engine = engine
        self.config = config
        self.metadata = metadata
        self._preprocessor = Preprocessor(metadata.preprocessing)
        classes = metadata.classes
        self._class_count = len(classes)
        self._guidewire_index = classes.index("guidewire") if "guidewire" in classes else None
        self._stent_index = classes.index("stent") if "stent" in classes else None
        self._catheter_index = (
            classes.index("catheter")
            if config.use_catheter_class and "catheter" in classes
            else None
        )
        self._has_tip_head = "tip_heatmap" in metadata.heads
        model_h, model_w = metadata.preprocessing.input_size
        # buffers reused every frame (the pipeline is not re-entrant: one per node)
        self._net_input = np.empty((1, 1, model_h, model_w), dtype=np.float32)
        self._probs = np.empty((self._class_count, model_h, model_w), dtype=np.float32)
        self._max_logit = np.empty((model_h, model_w), dtype=np.float32)
        self._prob_sum = np.empty((model_h, model_w), dtype=np.float32)
        self._tip_prob = np.empty((model_h, model_w), dtype=np.float32)
        self._labels_model = np.empty((model_h, model_w), dtype=np.uint8)
        self._greater = np.empty((model_h, model_w), dtype=bool)
        self._scaled_geometry: dict[float, GeometryConfig] = {}
        self._tracker = TipTracker(config.tracker) if config.tracking_enabled else None
        #: Frames whose wire segmentation covered more than ``max_wire_fraction``.
        self.implausible_wire_frames = 0
        #: Times the input image size changed between frames (each one reset tracking).
        self.image_size_changes = 0
        self._last_image_size: tuple[int, int] | None = None

    def reset_tracking(self) -> None:
        """Forget all tracks (new sequence, bag loop, operator request)."""
        if self._tracker is not None:
            self._tracker.reset()

    def _geometry_config(self, transform: FrameTransform) -> GeometryConfig:
        scale = math.sqrt(transform.scale_x * transform.scale_y)
        if abs(scale - 1.0) <= _SCALE_TOLERANCE:
            return self.config.geometry
        key = round(scale, 3)
        if key not in self._scaled_geometry:
            self._scaled_geometry[key] = scale_geometry_config(self.config.geometry, key)
        return self._scaled_geometry[key]

    def _decode(
        self, outputs: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Softmax ``(C, h, w)``, argmax labels ``(h, w)`` uint8 and sigmoid tip ``(h, w)``.

        All three are buffers reused by the next frame.
        """
        model_shape = self.metadata.preprocessing.input_size
        logits = outputs.get("logits")
        if logits is None or logits.shape != (1, self._class_count, *model_shape):
            got = None if logits is None else logits.shape
            raise ValueError(
                f"engine output 'logits' has shape {got}; expected "
                f"(1, {self._class_count}, {model_shape[0]}, {model_shape[1]})"
            )
        scores = logits[0]  # (C, h, w)
        if not np.isfinite(scores).all():
            # e.g. fp16 overflow in a TensorRT engine: refuse rather than publish garbage
            raise ValueError(
                "engine output 'logits' contains NaN/inf; expected finite scores (check the "
                "model, or run without fp16)"
            )
        # argmax and max over classes in one pass of C planes: np.argmax(axis=0) walks the
        # array with a stride of h*w and is ~10x slower at 512x512
        labels = self._labels_model
        labels.fill(0)
        np.copyto(self._max_logit, scores[0])
        for class_index in range(1, self._class_count):
            np.greater(scores[class_index], self._max_logit, out=self._greater)
            labels[self._greater] = class_index  # strict ">" keeps the first maximum
            np.maximum(self._max_logit, scores[class_index], out=self._max_logit)
        # numerically stable softmax over classes, in place in reused float32 buffers
        np.subtract(scores, self._max_logit, out=self._probs)
        np.exp(self._probs, out=self._probs)
        np.sum(self._probs, axis=0, out=self._prob_sum)
        np.divide(self._probs, self._prob_sum, out=self._probs)
        tip_prob = None
        if self._has_tip_head and "tip_heatmap" in outputs:
            tip_logits = outputs["tip_heatmap"]
            if tip_logits.shape != (1, 1, *model_shape):
                raise ValueError(
                    f"engine output 'tip_heatmap' has shape {tip_logits.shape}; expected "
                    f"(1, 1, {model_shape[0]}, {model_shape[1]})"
                )
            # sigmoid as 0.5 * (1 + tanh(x / 2)): no overflow for large |x|
            np.multiply(tip_logits[0, 0], 0.5, out=self._tip_prob)
            np.tanh(self._tip_prob, out=self._tip_prob)
            self._tip_prob += 1.0
            self._tip_prob *= 0.5
            tip_prob = self._tip_prob
        return self._probs, labels, tip_prob

    def process(self, image: np.ndarray, stamp_ns: int, encoding: str = "mono8") -> FrameResult:
        """Run every stage on one decoded frame.

        Parameters
        ----------
        image : np.ndarray
            Decoded frame (:func:`~fluoro_perception.core.decode.decode_image`):
            ``(H, W)`` uint8/uint16 or ``(H, W, 3)`` uint8.
        stamp_ns : int
            Acquisition time of the frame [ns]; carried into the result and the tracks.
        encoding : str
            Encoding the image was decoded from.

        Returns
        -------
        FrameResult
            Masks at the input resolution; wires, stents and tracks in input pixels;
            ``timings_ms`` with ``preprocess``, ``inference``, ``decode``, ``geometry``,
            ``tracking``, ``masks`` and ``total`` [ms]; ``geometry_caps_hit`` with the
            items each geometry cost cap left out.
        """
        if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, int | np.integer):
            raise TypeError(f"stamp_ns={stamp_ns!r}; expected an int [ns] (header stamp)")
        canonical = normalize_encoding(encoding)
        timings: dict[str, float] = {}
        start = time.perf_counter()

        grey = to_mono_float(image, canonical, self.config.bit_depth)  # (H, W) float32
        image_size = (int(grey.shape[0]), int(grey.shape[1]))
        if self._last_image_size is not None and image_size != self._last_image_size:
            # track positions [px] of another image geometry are not comparable: a
            # velocity across the change would be meaningless, so start over
            self.reset_tracking()
            self.image_size_changes += 1
        self._last_image_size = image_size
        net_input, transform, field_mask = self._preprocessor(grey, out=self._net_input)
        after_preprocess = time.perf_counter()
        timings["preprocess"] = (after_preprocess - start) * 1e3

        outputs = self.engine.run(net_input)
        after_inference = time.perf_counter()
        timings["inference"] = (after_inference - after_preprocess) * 1e3

        probs, labels_model, tip_prob = self._decode(outputs)
        after_decode = time.perf_counter()
        timings["decode"] = (after_decode - after_inference) * 1e3

        wires: list[WireDetection] = []
        stents: list[StentDetection] = []
        caps_hit = new_caps_hit()
        geometry = self._geometry_config(transform)
        field_model = transform.image_to_model(field_mask, "nearest") if field_mask.any() else None
        if self._guidewire_index is not None and self._wire_fraction_plausible(
            probs[self._guidewire_index], geometry.wire_threshold, field_model
        ):
            model_wires = extract_wires(
                probs[self._guidewire_index],
                tip_prob,
                geometry,
                field_model,
                catheter_prob=None if self._catheter_index is None else probs[self._catheter_index],
                image=net_input[0, 0],
                stent_prob=None if self._stent_index is None else probs[self._stent_index],
                caps_hit=caps_hit,
            )
            wires = [wire_to_input(wire, transform) for wire in model_wires]
        if self._stent_index is not None:
            stents = [
                stent_to_input(stent, transform)
                for stent in extract_stents(probs[self._stent_index], geometry, caps_hit=caps_hit)
            ]
        after_geometry = time.perf_counter()
        timings["geometry"] = (after_geometry - after_decode) * 1e3

        tracks = []
        if self._tracker is not None:
            confident = [w for w in wires if w.confidence >= self.config.min_tip_confidence]
            tracks = self._tracker.update(int(stamp_ns), confident)
        after_tracking = time.perf_counter()
        timings["tracking"] = (after_tracking - after_geometry) * 1e3

        labels = transform.labels_to_input(labels_model)  # (H, W) uint8
        if self.config.mask_outside_field and field_mask.any():
            labels[~field_mask] = 0
        guidewire_mask = self._class_mask(labels, self._guidewire_index)
        stent_mask = self._class_mask(labels, self._stent_index)
        tip_heatmap = None
        if tip_prob is not None and self.config.return_tip_heatmap:
            tip_heatmap = transform.probs_to_input(tip_prob)  # (H, W) float32
        end = time.perf_counter()
        timings["masks"] = (end - after_tracking) * 1e3
        timings["total"] = (end - start) * 1e3
        return FrameResult(
            stamp_ns=int(stamp_ns),
            labels=labels,
            guidewire_mask=guidewire_mask,
            stent_mask=stent_mask,
            wires=wires,
            stents=stents,
            tracks=list(tracks),
            tip_heatmap=tip_heatmap,
            timings_ms=timings,
            geometry_caps_hit=caps_hit,
        )

    def _wire_fraction_plausible(
        self, wire_prob: np.ndarray, threshold: float, field_model: np.ndarray | None
    ) -> bool:
        above = wire_prob >= threshold
        if field_model is not None:
            above &= field_model  # geometry ignores wire pixels outside the field
        area = int(np.count_nonzero(field_model)) if field_model is not None else wire_prob.size
        wire_pixels = int(np.count_nonzero(above))
        if wire_pixels > self.config.max_wire_fraction * max(area, 1):
            self.implausible_wire_frames += 1
            return False
        return True

    @staticmethod
    def _class_mask(labels: np.ndarray, class_index: int | None) -> np.ndarray:
        mask = np.zeros(labels.shape, dtype=np.uint8)
        if class_index is not None:
            mask[labels == class_index] = 255
        return mask
