"""Simulator configuration: :class:`SimConfig` (frozen, validated), the scenario names
and their default weights.

Every range of :class:`SimConfig` is checked at construction with a one-line error that
names the field and its bounds, so a bad config fails before any frame is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCENARIOS: tuple[str, ...] = ("mono", "dual", "stiff", "stent", "contrast", "collimation")
#: Scenario probabilities when ``SimConfig.scenario`` is None (same order as SCENARIOS).
DEFAULT_SCENARIO_WEIGHTS: tuple[float, ...] = (0.22, 0.2, 0.13, 0.18, 0.15, 0.12)
FIELD_KINDS: tuple[str, ...] = ("full", "shutters", "circle")
SUPPORTED_BIT_DEPTHS: tuple[int, ...] = (8, 12, 16)


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


__all__ = [
    "DEFAULT_SCENARIO_WEIGHTS",
    "FIELD_KINDS",
    "SCENARIOS",
    "SUPPORTED_BIT_DEPTHS",
    "SimConfig",
]
