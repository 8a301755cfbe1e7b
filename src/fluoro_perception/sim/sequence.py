"""Scenario sampling and the frame-sequence simulator.

One :class:`SequenceSimulator` is one fluoroscopy run: at construction it draws every
parameter of the run from the ranges in :class:`SimConfig` (scenario, pixel spacing,
dose, noise, blur, display mapping, field shape, anatomy, distractors, instruments,
motion) and builds the static anatomy canvas once; each frame then warps that canvas,
draws the moving instruments, forms the X-ray image and rasterizes the ground truth.

Determinism: everything is drawn from :class:`numpy.random.Generator` objects seeded
from ``np.random.SeedSequence(seed)`` (one child stream for the scene, one for the
per-frame noise, one per wire's manipulation); nothing reads the wall clock or the
global RNG, so the same seed and config give byte-identical frames.

Scenarios (default weights in :data:`DEFAULT_SCENARIO_WEIGHTS`), after the seed papers:

* ``mono``: one coronary guidewire through a guide catheter (FRA-Net, seed 001).
* ``dual``: two independent wires in one guide catheter going to the two branches of a
  bifurcation, side by side and crossing (PCI; FRA-Net seed 001, Fig. 1).
* ``stiff``: EVAR: a straight, thick stiff wire from a femoral sheath at aortic scale over
  the lumbar spine, often with a large aortic stent-graft (PUGSeg in seed 000).
* ``stent``: a coronary stent (crimped / deployed / partially deployed balloon-expandable
  or self-expanding) threaded on the wire, sometimes a second implanted one (seed 000).
* ``contrast``: contrast injections that fill and fade a vessel tree around the wire.
* ``collimation``: small shuttered or circular fields, variable effective content
  (FGA-Net, seed 002, "Cropping").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import cv2
import numpy as np

from fluoro_perception.sim.anatomy import AnatomyLayers, VesselBranch, build_anatomy
from fluoro_perception.sim.instruments import (
    CatheterSpec,
    WireSpec,
    accumulate_strokes,
    arc_length,
    catheter_strokes,
    gt_wire_thickness_px,
    random_walk_curve,
    rasterize_polyline,
    resample_polyline,
    shaped_wire,
    sub_polyline,
    tangent_normal,
    wire_strokes,
)
from fluoro_perception.sim.motion import InsertionProfile, SceneMotion, sample_motion_spec
from fluoro_perception.sim.physics import ImageFormation, ImagingSpec, make_field_mask
from fluoro_perception.sim.stents import (
    StentSpec,
    sample_stent_spec,
    stent_geometry,
    stent_gt_thickness_px,
    stent_outline_metrics,
    stent_strokes,
)
from fluoro_perception.sim.types import SimFrame, StentTruth, WireTruth

SCENARIOS: tuple[str, ...] = ("mono", "dual", "stiff", "stent", "contrast", "collimation")
#: Scenario probabilities when ``SimConfig.scenario`` is None (same order as SCENARIOS).
DEFAULT_SCENARIO_WEIGHTS: tuple[float, ...] = (0.22, 0.2, 0.13, 0.18, 0.15, 0.12)
FIELD_KINDS: tuple[str, ...] = ("full", "shutters", "circle")
SUPPORTED_BIT_DEPTHS: tuple[int, ...] = (8, 12, 16)

_GUIDEWIRE, _STENT, _CATHETER = 1, 2, 3
#: Wire positions integrated per frame when the wire moves fast (motion blur).
BLUR_SAMPLES = 4


def _check_range(name: str, value, low_bound: float, high_bound: float) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, int | float) for v in value)
    ):
        raise TypeError(f"SimConfig.{name}={value!r} must be a (low, high) tuple of numbers")
    low, high = value
    if not (low_bound <= low <= high <= high_bound):
        raise ValueError(
            f"SimConfig.{name}={value!r} must satisfy {low_bound} <= low <= high <= "
            f"{high_bound}; pass a tuple inside those bounds"
        )


def _check_probability(name: str, value) -> None:
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"SimConfig.{name}={value!r} must be a probability in [0, 1]")


@dataclass(frozen=True)
class SimConfig:
    """Simulator configuration: frame format and the ranges each sequence draws from.

    Ranges are ``(low, high)`` tuples drawn uniformly per sequence unless noted. Sizes in
    pixels refer to a 512 px frame and scale with ``max(height, width) / 512``, so a
    256 px frame shows the same field of view at half the resolution.

    Attributes
    ----------
    height, width : int
        Frame size [px], 32-4096.
    fps : float
        Frame rate [1/s]; ``SimFrame.timestamp_s = frame_index / fps``.
    scenario : str or None
        One of :data:`SCENARIOS`, or None to draw one per sequence with
        ``scenario_weights``.
    bit_depth : int
        8 -> uint8 image; 12 or 16 -> uint16 image (12-bit data stays below 4096).
    scenario_weights : tuple of float
        Probabilities of the scenarios (normalized), same order as :data:`SCENARIOS`.
    pixel_spacing_mm_range : tuple
        Pixel spacing of a 512 px frame [mm/px] (0.1-0.3 mm).
    dose_photons_range : tuple
        Photons per pixel behind dense tissue (85th percentile of the field's
        attenuation), drawn log-uniformly (quantum noise).
    raw_probability : float
        Probability of a raw low-dose look (lower dose, no temporal filter / edge
        enhancement); otherwise a processed, denoised clinical export look.
    electronic_noise_range : tuple
        Electronic noise std [photons].
    psf_sigma_px_range : tuple
        Detector blur std [px].
    gamma_range : tuple
        Bounds of the display gamma that the auto-brightness solves for.
    mean_grey_range : tuple
        Mean grey level inside the field the auto-brightness aims at [0-255 scale].
    field_kind_weights : tuple of float
        Probabilities of full / shuttered / circular fields (``collimation`` always
        collimates, to 20-75 % of the frame).
    motion_scale : float
        Multiplies respiratory, cardiac and pan amplitudes (0 = static patient).
    table_pan_probability : float
        Probability that a sequence contains table pans.
    tip_excursion_probability : float
        Probability that the wire tip is driven out of the field and back.
    excursion_period_s_range : tuple
        Period of a tip excursion [s].
    contrast_probability : float
        Probability of contrast injections in scenarios other than ``contrast``.
    residual_contrast_probability : float
        Probability of a faint, static residual opacification of the vessel tree (5-20 %
        of full) in sequences without an injection (contrast left from an earlier run).
    wire_dropout_probability : float
        Probability of low-dose visibility gaps: 1-4 patches (3-10 mm) of the patient
        where any wire passing through keeps only 10-50 % of its contrast.
    faint_wire_probability : float
        Probability of a nearly invisible wire (very low attenuation).
    distractor_scale : float
        Multiplies the expected number of distractors (0 = none).
    wire_width_px_range, wire_attenuation_range : tuple or None
        When set, every wire's rendered width [px] (of a 512 px frame) and body line
        integral are redrawn from these ranges (the distal coil keeps its ratio to the
        body) from a generator of their own, so no other draw changes; None (default)
        keeps the scenario's own draws. The style-held-out set (``fluoro-sim styleset``)
        uses ranges the training stream never draws.
    wire_absent_probability : float
        Probability that a sequence is a hard negative: the same scene (catheters,
        contrast, anatomy, distractors) with no guidewire and no stent drawn or labelled
        (``SimFrame.wires`` empty, ``params["wire_absent"]`` True). At 0 (the default) no
        random number is drawn for it, so every other sequence stays byte-identical.
    """

    height: int = 512
    width: int = 512
    fps: float = 15.0
    scenario: str | None = None
    bit_depth: int = 8
    scenario_weights: tuple[float, ...] = DEFAULT_SCENARIO_WEIGHTS
    pixel_spacing_mm_range: tuple[float, float] = (0.1, 0.3)
    dose_photons_range: tuple[float, float] = (30.0, 1500.0)
    raw_probability: float = 0.3
    electronic_noise_range: tuple[float, float] = (0.5, 6.0)
    psf_sigma_px_range: tuple[float, float] = (0.4, 1.3)
    gamma_range: tuple[float, float] = (0.5, 2.2)
    mean_grey_range: tuple[float, float] = (95.0, 130.0)
    field_kind_weights: tuple[float, float, float] = (0.55, 0.3, 0.15)
    motion_scale: float = 1.0
    table_pan_probability: float = 0.2
    tip_excursion_probability: float = 0.2
    excursion_period_s_range: tuple[float, float] = (2.5, 5.0)
    contrast_probability: float = 0.15
    residual_contrast_probability: float = 0.15
    wire_dropout_probability: float = 0.25
    faint_wire_probability: float = 0.12
    distractor_scale: float = 1.0
    wire_width_px_range: tuple[float, float] | None = None
    wire_attenuation_range: tuple[float, float] | None = None
    wire_absent_probability: float = 0.0

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"SimConfig.{name}={value!r} must be an int number of pixels")
            if not 32 <= value <= 4096:
                raise ValueError(f"SimConfig.{name}={value} is out of range; use 32 to 4096 pixels")
        if not isinstance(self.fps, int | float) or not 0.5 <= self.fps <= 120.0:
            raise ValueError(f"SimConfig.fps={self.fps!r} must be a number in [0.5, 120] frames/s")
        if self.scenario is not None and self.scenario not in SCENARIOS:
            raise ValueError(
                f"SimConfig.scenario={self.scenario!r} is not known; use None or one of {SCENARIOS}"
            )
        if self.bit_depth not in SUPPORTED_BIT_DEPTHS:
            raise ValueError(
                f"SimConfig.bit_depth={self.bit_depth!r} is not supported; use one of {SUPPORTED_BIT_DEPTHS}"
            )
        for name, count in (("scenario_weights", len(SCENARIOS)), ("field_kind_weights", 3)):
            weights = getattr(self, name)
            if (
                len(weights) != count
                or any(w < 0 for w in weights)
                or not np.isfinite(sum(weights))
                or sum(weights) <= 0
            ):
                raise ValueError(
                    f"SimConfig.{name}={weights!r} needs {count} non-negative weights with a positive sum"
                )
        _check_range("pixel_spacing_mm_range", self.pixel_spacing_mm_range, 0.02, 2.0)
        _check_range("dose_photons_range", self.dose_photons_range, 5.0, 1e6)
        _check_range("electronic_noise_range", self.electronic_noise_range, 0.0, 100.0)
        _check_range("psf_sigma_px_range", self.psf_sigma_px_range, 0.0, 5.0)
        _check_range("gamma_range", self.gamma_range, 0.2, 5.0)
        _check_range("mean_grey_range", self.mean_grey_range, 10.0, 245.0)
        _check_range("excursion_period_s_range", self.excursion_period_s_range, 0.5, 60.0)
        if self.wire_width_px_range is not None:
            _check_range("wire_width_px_range", self.wire_width_px_range, 0.3, 12.0)
        if self.wire_attenuation_range is not None:
            _check_range("wire_attenuation_range", self.wire_attenuation_range, 0.005, 3.0)
        for name in (
            "raw_probability",
            "table_pan_probability",
            "tip_excursion_probability",
            "contrast_probability",
            "residual_contrast_probability",
            "wire_dropout_probability",
            "faint_wire_probability",
            "wire_absent_probability",
        ):
            _check_probability(name, getattr(self, name))
        for name in ("motion_scale", "distractor_scale"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 10.0:
                raise ValueError(f"SimConfig.{name}={value!r} must be a number in [0, 10]")


@dataclass
class _Wire:
    instance_id: int
    spec: WireSpec
    track_px: np.ndarray  # canvas coordinates, proximal (entry) first
    track_arc_px: np.ndarray
    catheter_arc_px: float  # wire arc length hidden inside the catheter [px]
    access_arc_px: float  # arc length of the ostium / sheath tip, drawn catheter or not [px]
    profile: InsertionProfile
    rotation0_rad: float
    rotation_amp_rad: float
    rotation_hz: float
    rotation_drift_rad_s: float

    def rotation(self, t_s: float) -> float:
        return (
            self.rotation0_rad
            + self.rotation_amp_rad * np.sin(2 * np.pi * self.rotation_hz * t_s)
            + self.rotation_drift_rad_s * t_s
        )


@dataclass
class _Catheter:
    spec: CatheterSpec
    path_tip_first_px: np.ndarray  # canvas coordinates


@dataclass
class _Stent:
    instance_id: int
    spec: StentSpec
    track_px: np.ndarray
    track_arc_px: np.ndarray


def _sample_imaging(rng: np.random.Generator, config: SimConfig, size_scale: float) -> ImagingSpec:
    raw = bool(rng.random() < config.raw_probability)
    low, high = np.log(config.dose_photons_range)
    if raw:  # raw low-dose fluoroscopy: the lower half of the (log) dose range, down to a
        # third of its minimum (pulsed low-dose modes)
        low, high = low - np.log(3.0), 0.5 * (low + high)
    else:  # processed exports: the upper 80 % of the (log) range; their frames are soft
        # (high-pass residual 1.5-4 grey in real-fluoroscopy.md), the bottom of the range
        # gave residuals above 6 grey
        low = low + 0.2 * (high - low)
    dose = float(np.exp(rng.uniform(low, high)))
    black = rng.uniform(0.12, 0.3)
    return ImagingSpec(
        dose_photons=dose,
        electronic_noise_photons=rng.uniform(*config.electronic_noise_range),
        scatter_fraction=rng.uniform(0.1, 0.6),
        psf_sigma_px=rng.uniform(*config.psf_sigma_px_range)
        * (rng.uniform(0.6, 1.0) if raw else rng.uniform(1.0, 1.4)),
        temporal_filter=0.0 if raw else rng.uniform(0.45, 0.85),
        edge_enhance=rng.uniform(0.0, 0.3) if raw else rng.uniform(0.2, 1.0),
        edge_sigma_px=rng.uniform(1.5, 4.0) * max(size_scale, 0.5),
        gamma=1.0,
        target_mean=rng.uniform(*config.mean_grey_range) / 255.0,
        gamma_bounds=tuple(float(g) for g in config.gamma_range),
        black_level=black,
        white_level=min(0.95, black + rng.uniform(0.45, 0.62)),
        window_low_pct=rng.uniform(0.2, 3.0),
        window_high_pct=rng.uniform(97.0, 99.8),
        vignette_depth=rng.uniform(0.15, 0.55),
        vignette_width_px=rng.uniform(10.0, 20.0) * size_scale,
        heel_gradient=rng.uniform(0.0, 0.25),
        heel_angle_rad=rng.uniform(-np.pi, np.pi),
        outside_level=rng.uniform(0.0, 0.04),
        raw=raw,
        # 30 %: a wedge (compensation) filter over part of the field, 0.3-1.2 thick
        wedge_attenuation=rng.uniform(0.3, 1.2) if rng.random() < 0.3 else 0.0,
        wedge_angle_rad=rng.uniform(-np.pi, np.pi),
        wedge_offset=rng.uniform(0.0, 0.4),
        wedge_softness_px=rng.uniform(8.0, 30.0) * size_scale,
    )


def _sample_wire_spec(
    rng: np.random.Generator, stiff: bool, faint: bool, size_scale: float, mm_per_px: float
) -> WireSpec:
    if stiff:
        width = rng.uniform(2.5, 4.0) * max(size_scale, 0.5)
        body = rng.uniform(0.25, 0.6)
    else:
        width = rng.uniform(1.0, 3.0) * max(size_scale, 0.5)
        # from barely visible to strong (real wires range from a faint grey line to
        # nearly the darkness of the catheter)
        body = float(np.exp(rng.uniform(np.log(0.05), np.log(0.45))))
    if faint:
        body = rng.uniform(0.025, 0.06)
    width = float(np.clip(width, 1.0, 4.0))
    shape = str(rng.choice(["straight", "angled", "j"], p=[0.2, 0.5, 0.3]))
    bend = rng.uniform(0.3, 1.2) if shape == "angled" else rng.uniform(1.8, 3.3)
    return WireSpec(
        kind="stiff_guidewire" if stiff else "guidewire",
        width_px=width,
        body_attenuation=body,
        tip_attenuation=body * rng.uniform(1.5, 3.5),
        tip_dense_length_px=rng.uniform(8.0, 30.0) / mm_per_px,
        tip_shape=shape,
        tip_bend_rad=bend,
        tip_bend_length_px=rng.uniform(2.0, 8.0 if not stiff else 15.0) / mm_per_px,
    )


#: Contrast injection timing ranges [s] (documented in docs/simulator.md): the first
#: injection starts within START, the tree fills over FILL, stays opacified for HOLD,
#: washes out over WASHOUT to a residual of 0-10 %, and injections repeat every PERIOD.
BOLUS_START_S = (0.07, 0.4)
BOLUS_FILL_S = (0.5, 1.0)
BOLUS_HOLD_S = (1.0, 3.0)
BOLUS_WASHOUT_S = (1.5, 4.0)
BOLUS_PERIOD_S = (6.0, 10.0)


def _bolus_schedule(rng: np.random.Generator, mm_per_px: float, tree_length_px: float) -> dict:
    """An injection schedule: the front reaches the end of the tree (``tree_length_px``,
    path length from the ostium) after the fill time, so the whole tree fills in
    0.5-1 s whatever its size."""
    fill_s = rng.uniform(*BOLUS_FILL_S)
    return {
        "mode": "injection",
        "period_s": rng.uniform(*BOLUS_PERIOD_S),
        "start_s": rng.uniform(*BOLUS_START_S),
        "fill_s": fill_s,
        "front_speed_px_s": max(tree_length_px, 1.0) / fill_s,
        "hold_s": rng.uniform(*BOLUS_HOLD_S),
        "fade_s": rng.uniform(*BOLUS_WASHOUT_S),
        "residual": rng.uniform(0.0, 0.1),
        "soft_px": 6.0 / max(mm_per_px / 0.15, 0.3),
    }


def _residual_schedule(rng: np.random.Generator, mm_per_px: float) -> dict:
    """Static faint opacification of the whole tree (contrast left from an earlier run)."""
    return {
        "mode": "residual",
        "residual": rng.uniform(0.05, 0.2),
        "soft_px": 6.0 / max(mm_per_px / 0.15, 0.3),
    }


def _bolus_at(schedule: dict, t_s: float) -> tuple[float, float, float]:
    """Contrast state at ``t_s`` [s]: front position [px of vessel path from the ostium],
    opacity of the opacified part (0-1) and the base opacity of the rest of the tree
    (residual contrast of earlier injections, 0-1).

    Opacity rises over the first 60 % of the fill time (iodine concentration builds up
    while the front advances), holds, then falls linearly over the washout time to the
    residual level.
    """
    if schedule["mode"] == "residual":
        return 0.0, 0.0, float(schedule["residual"])
    if t_s < schedule["start_s"]:
        return 0.0, 0.0, 0.0
    since_first = t_s - schedule["start_s"]
    local = since_first % schedule["period_s"]
    base = schedule["residual"] if since_first >= schedule["period_s"] else 0.0
    front = local * schedule["front_speed_px_s"]
    rise = min(1.0, local / (0.6 * schedule["fill_s"]))
    fade_start = schedule["fill_s"] + schedule["hold_s"]
    if local < fade_start:
        opacity = rise
    else:
        washed = min(1.0, (local - fade_start) / schedule["fade_s"])
        opacity = 1.0 - (1.0 - schedule["residual"]) * washed
    return front, max(opacity, base), base


class SequenceSimulator:
    """Endless stream of consecutive simulated frames of ONE sequence.

    Parameters
    ----------
    seed : int
        Non-negative seed; the same seed and config give byte-identical frames.
    config : SimConfig
        Frame format and parameter ranges.
    sequence_id : str or None
        Written to every ``SimFrame.sequence_id``; default ``"sim-<seed>"``.
    """

    def __init__(
        self, seed: int, config: SimConfig = SimConfig(), sequence_id: str | None = None
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed={seed!r} must be a non-negative int; pass e.g. seed=0")
        if not isinstance(config, SimConfig):
            raise TypeError(f"config must be a SimConfig, got {type(config).__name__}")
        self.seed = int(seed)
        self.config = config
        self.sequence_id = sequence_id if sequence_id is not None else f"sim-{self.seed}"
        # a fixed scenario is mixed into the entropy so that the same seed used for each
        # scenario does not give every scenario the same patient and imaging parameters
        entropy = (
            self.seed
            if config.scenario is None
            else [self.seed, 1 + SCENARIOS.index(config.scenario)]
        )
        scene_ss, noise_ss, motion_ss, wire_ss = np.random.SeedSequence(entropy).spawn(4)
        rng = np.random.default_rng(scene_ss)
        self._noise_rng = np.random.default_rng(noise_ss)
        self._next_index = 0
        height, width = config.height, config.width
        size_scale = max(height, width) / 512.0
        self._size_scale = size_scale
        if config.scenario is None:
            weights = np.asarray(config.scenario_weights, dtype=np.float64)
            self.scenario = str(rng.choice(SCENARIOS, p=weights / weights.sum()))
        else:
            self.scenario = config.scenario
        scenario = self.scenario
        mm = rng.uniform(*config.pixel_spacing_mm_range) / size_scale
        self.pixel_spacing_m = float(mm * 1e-3)
        pad = int(round(0.22 * max(height, width))) + 8
        self._pad = pad
        canvas_shape = (height + 2 * pad, width + 2 * pad)

        # --- field of view -------------------------------------------------------------
        if scenario == "collimation":
            field_kind = str(rng.choice(["shutters", "circle"], p=[0.55, 0.45]))
            field_mask = make_field_mask(rng, height, width, field_kind, 0.2)
            for _ in range(10):  # "variable effective content": keep it clearly partial
                if field_mask.mean() <= 0.75:
                    break
                field_mask = make_field_mask(rng, height, width, field_kind, 0.2)
        else:
            fw = np.asarray(config.field_kind_weights, dtype=np.float64)
            field_kind = str(rng.choice(FIELD_KINDS, p=fw / fw.sum()))
            field_mask = make_field_mask(rng, height, width, field_kind, 0.45)
        self.field_mask = field_mask
        ys, xs = np.nonzero(field_mask)
        field_centre = (float(xs.mean()) + pad, float(ys.mean()) + pad)
        self._field_box = (xs.min(), xs.max(), ys.min(), ys.max())

        # --- anatomy and vessel tree -----------------------------------------------------
        stiff = scenario == "stiff"
        region = "abdomen" if stiff or rng.random() < 0.2 else "thorax"
        fx0, fx1, fy0, fy1 = self._field_box
        root = np.array(
            [
                pad + fx0 + (fx1 - fx0) * rng.uniform(0.25, 0.7),
                pad + fy0 + (fy1 - fy0) * rng.uniform(0.12, 0.4),
            ]
        )
        vessel_heading = np.pi / 2 + rng.normal(0.0, 0.6)
        excursion = bool(rng.random() < config.tip_excursion_probability)
        vessel_length = rng.uniform(0.6, 1.0) * max(height, width)
        # iodine line integral per px of filled-lumen chord at 512 px: 0.15-0.4, so that a
        # 3-12 px main vessel (0.35-3.8) is darker than any wire and 1-2 px distal
        # branches are wire-like. Vessel sizes are given in px (3-12 px near the ostium,
        # real-fluoroscopy.md) at every magnification, so the per-px value must not
        # shrink with the pixel spacing or highly magnified runs would show ghost trees.
        iodine_per_px = rng.uniform(0.15, 0.4) / size_scale
        anatomy = build_anatomy(
            rng,
            canvas_shape,
            mm,
            region,
            config.distractor_scale,
            root,
            vessel_heading,
            rng.uniform(3.0, 12.0) * size_scale,
            vessel_length,
            iodine_per_px,
            field_centre,
        )
        self._anatomy: AnatomyLayers = anatomy
        self._iodine_per_px = float(iodine_per_px)
        contrast = scenario == "contrast" or (
            not stiff and rng.random() < config.contrast_probability
        )
        residual = (
            not contrast and not stiff and rng.random() < config.residual_contrast_probability
        )
        tree_length = max(
            (b.root_distance_px + arc_length(b.points_px)[-1] for b in anatomy.branches),
            default=1.0,
        )
        self._bolus = (
            _bolus_schedule(rng, mm, tree_length)
            if contrast
            else _residual_schedule(rng, mm)
            if residual
            else None
        )
        # a wire inside an opacified lumen displaces iodine: it keeps only 10-40 % of its
        # contrast there, so it nearly vanishes in a filled vessel (real-fluoroscopy.md)
        self._wire_hidden_in_contrast = float(rng.uniform(0.6, 0.9))
        if self._bolus is not None:
            ys_v, xs_v = np.nonzero(anatomy.vessel > 1e-4)
            if len(ys_v) == 0:
                self._bolus = None
            else:
                self._vessel_box = (ys_v.min(), ys_v.max() + 1, xs_v.min(), xs_v.max() + 1)

        # --- imaging and motion -----------------------------------------------------------
        self.imaging = _sample_imaging(rng, config, size_scale)
        self._formation = ImageFormation(self.imaging, field_mask, config.bit_depth)
        motion_spec = sample_motion_spec(
            np.random.default_rng(motion_ss),
            height,
            width,
            config.motion_scale * (0.5 if stiff else 1.0),
            config.table_pan_probability,
            cardiac=region == "thorax",
        )
        self._motion = SceneMotion(
            motion_spec, height, width, pad, np.random.default_rng(motion_ss)
        )

        # --- instruments -----------------------------------------------------------------
        wire_rngs = [np.random.default_rng(s) for s in wire_ss.spawn(2)]
        self._catheters: list[_Catheter] = []
        self._wires: list[_Wire] = []
        self._stents: list[_Stent] = []
        faint = bool(rng.random() < config.faint_wire_probability)
        if stiff:
            entry = np.array(
                [pad + fx0 + (fx1 - fx0) * rng.uniform(0.3, 0.7), pad + height + 0.15 * height]
            )
            track = random_walk_curve(
                rng, tuple(entry), -np.pi / 2 + rng.normal(0, 0.15), 2.2 * height + 2 * pad,
                3.0, 0.0015, 0.004, 0.97, attractor_px=field_centre, attract_gain=0.001,
            )  # fmt: skip
            sheath_len = float(
                np.clip(0.15 * height + rng.uniform(0.0, 0.4) * height, 0.0, arc_length(track)[-1])
            )
            catheter_arc = sheath_len if rng.random() < 0.7 else 0.0
            tracks = [(track, catheter_arc, sheath_len)]
            catheter_width = rng.uniform(7.0, 9.0) * max(size_scale, 0.5)
        else:
            main = anatomy.branches[0].points_px
            main_heading = float(np.arctan2(*(main[1] - main[0])[::-1]))
            # the guide catheter leaves the ostium away from the vessel, towards the
            # outside of the field, and never comes back into view
            away = main[0] - np.asarray(field_centre)
            away_heading = float(np.arctan2(away[1], away[0]))
            heading = np.angle(
                np.exp(1j * (main_heading + np.pi)) + 0.8 * np.exp(1j * away_heading)
            ) + rng.normal(0.0, 0.4)
            back = random_walk_curve(
                rng, tuple(main[0]), float(heading), 2.5 * max(height, width), 3.0, 0.004,
                0.012, 0.95,
            )  # fmt: skip
            back = self._straighten_after_exit(back)
            catheter_path = back[::-1]  # entry (far outside the frame) -> ostium
            # 15 %: no guide catheter drawn (e.g. only a wire through a faint microcatheter),
            # the wire then enters the field from the border
            has_catheter = rng.random() < 0.85
            catheter_arc = float(arc_length(catheter_path)[-1]) if has_catheter else 0.0
            main_track = np.concatenate([catheter_path, main[1:]], axis=0)
            if excursion:
                main_track = self._extend_out_of_field(main_track)
            access_arc = float(arc_length(catheter_path)[-1])
            tracks = [(main_track, catheter_arc, access_arc)]
            if scenario == "dual" or (scenario in ("stent", "contrast") and rng.random() < 0.2):
                tracks.append(
                    (
                        self._second_track(rng, catheter_path, anatomy.branches),
                        catheter_arc,
                        access_arc,
                    )
                )
            catheter_width = rng.uniform(5.0, 9.0) * max(size_scale, 0.5)
        if catheter_arc > 0:
            cath_track = tracks[0][0]
            cath_path = sub_polyline(cath_track, arc_length(cath_track), 0.0, catheter_arc)
            self._catheters.append(
                _Catheter(
                    CatheterSpec(
                        width_px=float(np.clip(catheter_width, 3.0, 10.0)),
                        wall_attenuation=rng.uniform(0.15, 0.45),
                        lumen_fraction=rng.uniform(0.3, 0.7),
                        tip_marker_attenuation=rng.uniform(0.6, 1.5),
                        tip_marker_length_px=rng.uniform(1.5, 3.0) / mm,
                    ),
                    cath_path[::-1].copy(),
                )
            )
        self._guide_catheter = catheter_arc > 0
        # motion blur of fast wire moves: exposure window 20-60 % of the frame interval
        # (pulse width + detector lag), applied when the wire travels > 3 px in a frame
        self._blur_exposure = float(rng.uniform(0.2, 0.6))
        self._blur_min_travel_px = 3.0 * size_scale
        if stiff and rng.random() < 0.5:
            self._catheters.append(self._pigtail_catheter(rng, mm, size_scale))
        wireless = not stiff and rng.random() < 0.25
        if wireless:
            self._catheters.append(self._wireless_catheter(rng, mm, size_scale))
        # low-dose drop-outs: patches of the patient where wires nearly vanish
        self._dropouts: list[tuple[np.ndarray, float, float]] = []
        dropout_probability = config.wire_dropout_probability * (2.0 if self.imaging.raw else 1.0)
        if rng.random() < min(dropout_probability, 1.0):
            main_track = tracks[0][0]
            for _ in range(int(rng.integers(1, 5))):
                # centred on the wire's track so that the gap actually hits the wire
                centre = main_track[int(rng.integers(len(main_track) // 3, len(main_track)))]
                self._dropouts.append(
                    (
                        centre + rng.normal(0.0, 2.0, 2),
                        float(rng.uniform(3.0, 10.0) / mm / 2.0),
                        float(rng.uniform(0.1, 0.5)),
                    )
                )
        speed = rng.uniform(5.0, 35.0) / mm
        for k, (track, cath_arc, access_arc) in enumerate(tracks):
            spec = _sample_wire_spec(rng, stiff, faint, size_scale, mm)
            spec = self._restyle_wire(spec, k, size_scale)
            arc = arc_length(track)
            min_out = access_arc + 15.0 * size_scale
            max_in = arc[-1] - 2.0
            exit_arc = self._exit_arc(track, arc, access_arc)
            use_excursion = excursion and k == 0 and exit_arc is not None
            if use_excursion:
                amplitude = min(rng.uniform(25.0, 60.0) * size_scale, 0.8 * (exit_arc - min_out))
                use_excursion = amplitude > 5.0 * size_scale
            if use_excursion:
                profile = InsertionProfile(
                    wire_rngs[k], exit_arc, min_out, max_in, speed, config.fps, "excursion",
                    exit_px=exit_arc, amplitude_px=amplitude,
                    period_s=rng.uniform(*config.excursion_period_s_range),
                )  # fmt: skip
            else:
                visible_end = exit_arc if exit_arc is not None else max_in
                start = min_out + rng.uniform(0.3, 1.0) * max(visible_end - min_out, 0.0)
                profile = InsertionProfile(
                    wire_rngs[k],
                    start,
                    min_out,
                    max_in,
                    speed * (0.5 if stiff else 1.0),
                    config.fps,
                )
            self._wires.append(
                _Wire(
                    instance_id=k + 1,
                    spec=spec,
                    track_px=track,
                    track_arc_px=arc,
                    catheter_arc_px=cath_arc,
                    access_arc_px=access_arc,
                    profile=profile,
                    rotation0_rad=rng.uniform(-np.pi, np.pi),
                    rotation_amp_rad=rng.uniform(0.0, np.pi),
                    rotation_hz=rng.uniform(0.1, 0.5),
                    rotation_drift_rad_s=rng.uniform(-1.0, 1.0),
                )  # fmt: skip
            )
        self._excursion = any(w.profile.mode == "excursion" for w in self._wires)

        # --- stents ----------------------------------------------------------------------
        stent_kinds: list[tuple[str, int]] = []
        if scenario == "stent":
            stent_kinds.append(
                (str(rng.choice(["balloon_expandable", "self_expanding"], p=[0.6, 0.4])), 0)
            )
            if rng.random() < 0.25:
                stent_kinds.append(("balloon_expandable", -1))
        elif stiff and rng.random() < 0.65:
            stent_kinds.append(("aortic", 0))
        elif rng.random() < 0.05:
            stent_kinds.append(("balloon_expandable", -1))
        for n, (kind, wire_index) in enumerate(stent_kinds):
            if wire_index >= 0:
                wire = self._wires[wire_index]
                track, arc = wire.track_px, wire.track_arc_px
                low = wire.access_arc_px + 5.0 * size_scale
                high = (
                    wire.profile.min_px if wire.profile.mode == "manipulate" else wire.access_arc_px
                )
                high = max(high, wire.profile.at(0) - 10.0 * size_scale)
            else:  # an earlier implanted stent on a side branch (not threaded)
                branch = anatomy.branches[int(rng.integers(0, len(anatomy.branches)))]
                track = branch.points_px
                arc = arc_length(track)
                low, high = 0.0, arc[-1]
            spec = sample_stent_spec(rng, kind, 0.0, mm)
            length = min(spec.length_px, max(high - low, 10.0))
            centre = rng.uniform(low + 0.5 * length, max(high - 0.5 * length, low + 0.5 * length))
            spec = StentSpec(**{**{f.name: getattr(spec, f.name) for f in fields(spec)},
                                "centre_arc_px": float(centre), "length_px": float(length)})  # fmt: skip
            self._stents.append(_Stent(n + 1, spec, track, arc))

        self._sequence_params = {
            "scenario": scenario,
            "region": region,
            "field_kind": field_kind,
            "field_fraction": float(field_mask.mean()),
            "mm_per_px": float(mm),
            "contrast": self._bolus is not None and self._bolus["mode"] == "injection",
            "residual_contrast": self._bolus is not None and self._bolus["mode"] == "residual",
            "bolus_schedule": {
                k: v for k, v in (self._bolus or {}).items() if isinstance(v, float)
            },
            "tip_excursion": self._excursion,
            "faint_wire": faint,
            "catheters": len(self._catheters),
            "wireless_catheter": wireless,
            "wire_dropouts": len(self._dropouts),
            "n_wires": len(self._wires),
            "n_stents": len(self._stents),
            "distractors": list(anatomy.distractors),
            "wire_width_px": [float(w.spec.width_px) for w in self._wires],
            "wire_tip_shape": [w.spec.tip_shape for w in self._wires],
            **self.imaging.as_dict(),
        }
        # drawn last and only when enabled, so that it changes no other draw
        self._wire_absent = (
            config.wire_absent_probability > 0 and rng.random() < config.wire_absent_probability
        )
        if self._wire_absent:
            self._sequence_params.update(wire_absent=True, n_wires=0, n_stents=0)

    # ------------------------------------------------------------------------------------
    def _restyle_wire(self, spec: WireSpec, index: int, size_scale: float) -> WireSpec:
        """``spec`` with width / attenuation redrawn from the config's override ranges
        (an own generator per wire, so that no scene draw changes); unchanged without."""
        config = self.config
        if config.wire_width_px_range is None and config.wire_attenuation_range is None:
            return spec
        rng = np.random.default_rng([self.seed, 4242, index])
        width, body = spec.width_px, spec.body_attenuation
        if config.wire_width_px_range is not None:
            width = float(rng.uniform(*config.wire_width_px_range) * max(size_scale, 0.5))
        if config.wire_attenuation_range is not None:
            body = float(rng.uniform(*config.wire_attenuation_range))
        coil = spec.tip_attenuation / spec.body_attenuation
        return replace(spec, width_px=width, body_attenuation=body, tip_attenuation=body * coil)

    def _wire_visibility(self, points_canvas_px: np.ndarray) -> np.ndarray | None:
        """Per-point visibility ``(N,)`` (0-1) of a wire from the sequence's low-dose
        drop-out patches (fixed to the patient, so the gap stays where the anatomy is
        while the wire slides through it); None without patches."""
        if not self._dropouts:
            return None
        visibility = np.ones(len(points_canvas_px))
        for centre, radius, kept in self._dropouts:
            distance = np.hypot(*(points_canvas_px - centre).T) / radius
            # smooth edge: full drop inside 0.7 r, none beyond r
            depth = np.clip((1.0 - distance) / 0.3, 0.0, 1.0)
            visibility = np.minimum(visibility, 1.0 - (1.0 - kept) * depth)
        return visibility

    def _in_field(self, points_frame_px: np.ndarray) -> np.ndarray:
        """Boolean ``(N,)``: rounded point inside the frame and the exposed field."""
        height, width = self.field_mask.shape
        ix = np.round(points_frame_px[:, 0]).astype(np.int64)
        iy = np.round(points_frame_px[:, 1]).astype(np.int64)
        inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
        result = np.zeros(len(points_frame_px), dtype=bool)
        result[inside] = self.field_mask[iy[inside], ix[inside]]
        return result

    def _exit_arc(self, track: np.ndarray, arc: np.ndarray, after_arc: float) -> float | None:
        """First arc length beyond ``after_arc`` where the (static) track leaves the field
        after being inside it, or None."""
        inside = self._in_field(track - self._pad)
        beyond = arc > after_arc
        was_inside = False
        for i in np.flatnonzero(beyond):
            if inside[i]:
                was_inside = True
            elif was_inside:
                return float(arc[i])
        return None

    def _straighten_after_exit(self, path: np.ndarray) -> np.ndarray:
        """Replace a canvas path after it first leaves the frame (plus a 10 % margin for
        motion) by a straight continuation of the same length, so it cannot re-enter."""
        height, width = self.field_mask.shape
        margin = 0.1 * max(height, width)
        x = path[:, 0] - self._pad
        y = path[:, 1] - self._pad
        outside = (x < -margin) | (x > width + margin) | (y < -margin) | (y > height + margin)
        exits = np.flatnonzero(outside)
        if len(exits) == 0 or exits[0] < 2:
            return path
        first = int(exits[0])
        direction = path[first] - path[first - 1]
        direction = direction / max(float(np.hypot(*direction)), 1e-9)
        remaining = len(path) - 1 - first
        steps = np.hypot(*np.diff(path[: first + 1], axis=0).T)
        step = float(np.mean(steps)) if len(steps) else 3.0
        extension = path[first] + step * np.arange(1, remaining + 1)[:, None] * direction
        return np.concatenate([path[: first + 1], extension], axis=0)

    def _extend_out_of_field(self, track: np.ndarray) -> np.ndarray:
        """Continue a track straight along its last heading until it leaves the field."""
        direction = track[-1] - track[-4]
        direction = direction / max(float(np.hypot(*direction)), 1e-9)
        reach = np.arange(1, int(2 * max(self.field_mask.shape)), 3.0)
        extension = track[-1] + reach[:, None] * direction
        return np.concatenate([track, extension], axis=0)

    def _pigtail_catheter(
        self, rng: np.random.Generator, mm: float, size_scale: float
    ) -> _Catheter:
        """EVAR flush catheter: a shaft from the other femoral side up the aorta ending in
        a 1-1.6 turn pigtail loop of 6-12 mm radius (labelled catheter)."""
        height = self.field_mask.shape[0]
        pad = self._pad
        fx0, fx1, _, _ = self._field_box
        start = (pad + fx0 + (fx1 - fx0) * rng.uniform(0.2, 0.8), pad + 1.15 * height)
        shaft = random_walk_curve(
            rng, start, -np.pi / 2 + rng.normal(0.0, 0.2),
            rng.uniform(0.5, 1.0) * height + 0.15 * height, 3.0, 0.002, 0.005, 0.97,
        )  # fmt: skip
        step = shaft[-1] - shaft[-2]
        heading = float(np.arctan2(step[1], step[0]))
        side = float(rng.choice([-1.0, 1.0]))
        radius = rng.uniform(6.0, 12.0) / mm
        normal = np.array([np.cos(heading + side * np.pi / 2), np.sin(heading + side * np.pi / 2)])
        centre = shaft[-1] + radius * normal
        sweep = 2.0 * np.pi * rng.uniform(1.0, 1.6)
        phi = np.linspace(0.0, sweep, 120)[1:]
        start_angle = float(np.arctan2(*(shaft[-1] - centre)[::-1]))
        loop_radius = radius * (1.0 - 0.35 * phi / sweep)
        loop = centre + loop_radius[:, None] * np.stack(
            [np.cos(start_angle + side * phi), np.sin(start_angle + side * phi)], axis=1
        )
        path = np.concatenate([shaft, loop], axis=0)
        spec = CatheterSpec(
            width_px=float(np.clip(rng.uniform(4.0, 6.0) * max(size_scale, 0.5), 3.0, 10.0)),
            wall_attenuation=rng.uniform(0.12, 0.35),
            lumen_fraction=rng.uniform(0.3, 0.7),
            tip_marker_attenuation=rng.uniform(0.4, 1.0),
            tip_marker_length_px=rng.uniform(1.0, 2.0) / mm,
        )
        return _Catheter(spec, path[::-1].copy())

    def _wireless_catheter(
        self, rng: np.random.Generator, mm: float, size_scale: float
    ) -> _Catheter:
        """A catheter with NO wire in it (diagnostic catheter left in place, temporary
        pacing catheter, second guide): enters from a border and ends inside the field
        with a tip marker; labelled catheter, never guidewire (a wire-like distractor)."""
        height, width = self.field_mask.shape
        pad = self._pad
        fx0, fx1, fy0, fy1 = self._field_box
        side = int(rng.integers(0, 4))
        along = rng.uniform(0.15, 0.85)
        start = [
            (pad - 0.1 * width, pad + fy0 + along * (fy1 - fy0)),
            (pad + 1.1 * width, pad + fy0 + along * (fy1 - fy0)),
            (pad + fx0 + along * (fx1 - fx0), pad - 0.1 * height),
            (pad + fx0 + along * (fx1 - fx0), pad + 1.1 * height),
        ][side]
        heading = [0.0, np.pi, np.pi / 2, -np.pi / 2][side] + rng.normal(0.0, 0.3)
        path = random_walk_curve(
            rng, start, heading, (0.1 + rng.uniform(0.3, 0.8)) * max(height, width), 3.0,
            0.004, 0.015, 0.95,
        )  # fmt: skip
        spec = CatheterSpec(
            width_px=float(np.clip(rng.uniform(3.0, 7.0) * max(size_scale, 0.5), 3.0, 10.0)),
            wall_attenuation=rng.uniform(0.1, 0.4),
            lumen_fraction=rng.uniform(0.3, 0.8),
            tip_marker_attenuation=rng.uniform(0.3, 1.2),
            tip_marker_length_px=rng.uniform(1.0, 3.0) / mm,
        )
        return _Catheter(spec, path[::-1].copy())

    def _second_track(
        self, rng: np.random.Generator, catheter_path: np.ndarray, branches: list[VesselBranch]
    ) -> np.ndarray:
        """Track of the second PCI wire: side by side with the main wire (smoothly varying
        lateral offset whose zero crossings make the wires cross), then into a side branch."""
        main = branches[0].points_px
        children = [b for b in branches[1:] if b.parent == 0]
        if children:
            child = children[int(rng.integers(0, len(children)))]
            fork = int(np.argmin(np.hypot(*(main - child.points_px[0]).T)))
            side = child.points_px
        else:
            fork = int(len(main) * rng.uniform(0.3, 0.6))
            step = main[min(fork + 1, len(main) - 1)] - main[max(fork - 1, 0)]
            heading = float(np.arctan2(step[1], step[0])) + rng.choice([-1, 1]) * rng.uniform(
                0.4, 1.0
            )
            side = random_walk_curve(
                rng, tuple(main[fork]), heading, 0.5 * len(main) * 2.0, 2.0, 0.02, 0.06
            )
        shared = main[: fork + 1]
        s = arc_length(shared)
        _, normal = tangent_normal(shared) if len(shared) >= 2 else (None, np.zeros_like(shared))
        # PCI wires share a 2.5-4 mm vessel: side by side a few px apart, crossing at the
        # zero crossings of the offset
        # 35 %: very close (1-2.5 px apart, touching where they cross) but separate in GT
        close = rng.random() < 0.35
        amplitude = max(
            1.0 if close else 1.5,
            (rng.uniform(1.0, 2.5) if close else rng.uniform(3.0, 8.0)) * self._size_scale,
        )
        wavelength = rng.uniform(40.0, 120.0) * self._size_scale
        ramp = np.clip(s / (10.0 * self._size_scale), 0.0, 1.0)
        offset = amplitude * ramp * np.sin(2 * np.pi * s / wavelength + rng.uniform(0, np.pi))
        shared = shared + offset[:, None] * normal
        return np.concatenate([catheter_path, shared[1:], side[1:]], axis=0)

    # ------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[SimFrame]:
        while True:
            yield self._render_next()

    def frames(self, n: int) -> list[SimFrame]:
        """The next ``n`` consecutive frames."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n={n!r} must be a non-negative int number of frames")
        return [self._render_next() for _ in range(int(n))]

    def _to_frame(self, points_canvas: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return self._motion.canvas_to_frame(points_canvas, dx, dy)

    def _render_next(self) -> SimFrame:
        index = self._next_index
        self._next_index += 1
        config = self.config
        height, width = config.height, config.width
        t = index / config.fps
        map_x, map_y, dx, dy = self._motion.maps(t)
        anatomy = self._anatomy
        moving = anatomy.body
        bolus_front, bolus_opacity, bolus_base = 0.0, 0.0, 0.0
        wire_weight = None  # (H, W) factor on wire attenuation where contrast fills a lumen
        if self._bolus is not None:
            bolus_front, bolus_opacity, bolus_base = _bolus_at(self._bolus, t)
            if bolus_opacity > 0 or bolus_base > 0:
                y0, y1, x0, x1 = self._vessel_box
                # opacity behind the front, the residual base level ahead of it
                fill = (np.float32(bolus_front) - anatomy.vessel_root_distance_px[y0:y1, x0:x1]) * (
                    np.float32(1.0 / self._bolus["soft_px"])
                )
                np.clip(fill, 0.0, 1.0, out=fill)
                level = np.float32(bolus_base) + np.float32(bolus_opacity - bolus_base) * fill
                opacified = np.zeros_like(anatomy.body)
                opacified[y0:y1, x0:x1] = anatomy.vessel[y0:y1, x0:x1] * level
                moving = anatomy.body + opacified
                opacified_frame = cv2.remap(
                    opacified, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
                )
                # 1 inside a lumen filled to at least a 1.5 px chord of full-strength iodine
                filled = opacified_frame * np.float32(1.0 / (1.5 * self._iodine_per_px))
                np.clip(filled, 0.0, 1.0, out=filled)
                wire_weight = 1.0 - np.float32(self._wire_hidden_in_contrast) * filled
        attenuation = cv2.remap(
            moving, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        labels = np.zeros((height, width), dtype=np.uint8)
        instances = np.zeros((height, width), dtype=np.uint8)

        for k, catheter in enumerate(self._catheters):
            path = self._to_frame(catheter.path_tip_first_px, dx, dy)
            spec = catheter.spec
            if k == 0 and self._guide_catheter and bolus_opacity > bolus_base and bolus_front > 0:
                # contrast is injected through the guide catheter: its lumen turns dark
                lumen = spec.lumen_fraction + (1.5 - spec.lumen_fraction) * bolus_opacity
                spec = replace(spec, lumen_fraction=lumen)
            strokes, per_level = catheter_strokes(path, spec)
            accumulate_strokes(attenuation, strokes, per_level)
            rasterize_polyline(labels, path, _CATHETER, max(3, int(round(catheter.spec.width_px))))

        wire_truths: list[WireTruth] = []
        insertion = []
        instance_lines: list[tuple[int, int, np.ndarray, int]] = []
        for wire in () if self._wire_absent else self._wires:
            depth = wire.profile.at(index)
            insertion.append(float(depth))
            shape_canvas = shaped_wire(
                wire.track_px, wire.track_arc_px, depth, wire.spec, wire.rotation(t)
            )
            shape = self._to_frame(shape_canvas, dx, dy)
            previous_depth = wire.profile.at(index - 1) if index > 0 else depth
            travel = depth - previous_depth
            if abs(travel) > self._blur_min_travel_px:
                # motion blur: the wire moved fast during the exposure window (pulse width
                # plus detector lag); integrate it over BLUR_SAMPLES positions along the
                # last ``exposure`` fraction of the inter-frame travel. The GT stays at the
                # end position (the frame's time).
                for j in range(BLUR_SAMPLES):
                    lag = travel * self._blur_exposure * j / (BLUR_SAMPLES - 1)
                    sample_canvas = (
                        shape_canvas
                        if j == 0
                        else shaped_wire(
                            wire.track_px,
                            wire.track_arc_px,
                            depth - lag,
                            wire.spec,
                            wire.rotation(t),
                        )  # fmt: skip
                    )
                    strokes, per_level = wire_strokes(
                        self._to_frame(sample_canvas, dx, dy),
                        wire.spec,
                        self._wire_visibility(sample_canvas),
                    )
                    accumulate_strokes(attenuation, strokes, per_level / BLUR_SAMPLES, wire_weight)
            else:
                strokes, per_level = wire_strokes(
                    shape, wire.spec, self._wire_visibility(shape_canvas)
                )
                accumulate_strokes(attenuation, strokes, per_level, wire_weight)
            # GT: the part outside the catheter (tip -> catheter tip), inside the field
            canvas_arc = arc_length(shape_canvas)
            outside_catheter = sub_polyline(shape, canvas_arc, 0.0, depth - wire.catheter_arc_px)
            gt_line = resample_polyline(outside_catheter, 1.0)
            thickness = gt_wire_thickness_px(wire.spec.width_px)
            rasterize_polyline(labels, gt_line, _GUIDEWIRE, thickness)
            inside = self._in_field(gt_line)
            centerline = gt_line[inside]
            instance_lines.append((len(centerline), wire.instance_id, gt_line, thickness))
            if len(centerline) == 0:
                continue
            tip = shape[0].astype(np.float32)
            behind = sub_polyline(shape, arc_length(shape), 5.0, 5.0)[0]
            wire_truths.append(
                WireTruth(
                    instance_id=wire.instance_id,
                    kind=wire.spec.kind,
                    centerline_px=centerline.astype(np.float32),
                    tip_px=tip,
                    tip_direction_rad=float(np.arctan2(tip[1] - behind[1], tip[0] - behind[0])),
                    tip_visible=bool(inside[0]),
                    width_px=float(wire.spec.width_px),
                )
            )

        # where wires overlap the one with the shorter visible part wins, so that a short
        # wire lying along a longer one never vanishes from the instance map
        for _, instance_id, gt_line, thickness in sorted(
            instance_lines, key=lambda e: (-e[0], e[1])
        ):
            rasterize_polyline(instances, gt_line, instance_id, thickness)

        stent_truths: list[StentTruth] = []
        for stent in () if self._wire_absent else self._stents:
            geometry = stent_geometry(stent.spec, stent.track_px, stent.track_arc_px, t)
            pieces = geometry.strut_polylines + geometry.markers_px + [
                geometry.outline_px, geometry.axis_px, geometry.crimped_axis_px
            ]  # fmt: skip
            lengths = [len(p) for p in pieces]
            mapped = self._to_frame(np.concatenate(pieces, axis=0), dx, dy)
            split = np.split(mapped, np.cumsum(lengths)[:-1])
            n_struts, n_markers = len(geometry.strut_polylines), len(geometry.markers_px)
            geometry.strut_polylines = split[:n_struts]
            geometry.markers_px = split[n_struts : n_struts + n_markers]
            geometry.outline_px, geometry.axis_px, geometry.crimped_axis_px = split[-3:]
            strokes, per_level = stent_strokes(geometry, stent.spec)
            accumulate_strokes(attenuation, strokes, per_level)
            stent_mask = np.zeros((height, width), dtype=np.uint8)
            for strut in geometry.strut_polylines:
                rasterize_polyline(stent_mask, strut, 1, stent_gt_thickness_px(stent.spec))
            stent_mask &= self.field_mask
            if not stent_mask.any():
                continue
            labels[stent_mask > 0] = _STENT
            centroid, axis_rad, length = stent_outline_metrics(
                geometry.outline_px, geometry.axis_px
            )
            stent_truths.append(
                StentTruth(
                    instance_id=stent.instance_id,
                    kind=stent.spec.kind,
                    outline_px=geometry.outline_px.astype(np.float32),
                    centroid_px=centroid.astype(np.float32),
                    axis_rad=axis_rad,
                    length_px=length,
                    diameter_px=geometry.diameter_px,
                    deployed_fraction=geometry.deployed_fraction,
                )
            )

        outside = ~self.field_mask
        labels[outside] = 0
        instances[outside] = 0
        image = self._formation.render(attenuation, self._noise_rng)
        motion_state = self._motion.components(t)
        params = dict(self._sequence_params)
        params.update(motion_state)
        params.update(
            {
                "bolus_front_px": float(bolus_front),
                "bolus_opacity": float(bolus_opacity),
                "bolus_base_opacity": float(bolus_base),
                "insertion_px": insertion,
            }
        )
        return SimFrame(
            image=image,
            bit_depth=config.bit_depth,
            labels=labels,
            wire_instances=instances,
            field_mask=self.field_mask.copy(),
            wires=wire_truths,
            stents=stent_truths,
            pixel_spacing_m=self.pixel_spacing_m,
            sequence_id=self.sequence_id,
            frame_index=index,
            timestamp_s=float(t),
            scenario=self.scenario,
            params=params,
        )


def simulate_sequence(
    seed: int, n_frames: int, config: SimConfig = SimConfig()
) -> Iterator[SimFrame]:
    """Iterator over ``n_frames`` consecutive frames of the sequence ``seed`` (see
    :class:`SequenceSimulator`). Arguments are validated at the call, not at the first
    ``next()``."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 0:
        raise ValueError(f"n_frames={n_frames!r} must be a non-negative int number of frames")
    simulator = SequenceSimulator(seed, config)
    return (simulator._render_next() for _ in range(int(n_frames)))
