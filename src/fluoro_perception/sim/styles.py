"""Style-held-out renders: settings the training stream never draws (issue 12, target 2).

Our stand-in for a C-arm, a vendor and a patient we have never seen. Each *factor* changes
one thing outside the ranges of the training stream (``config/train/default.yaml``: the
simulator's own ranges of :class:`~fluoro_perception.sim.SimConfig` plus the training
augmentation of ``fluoro_training.data.augment``), so that the drop of a metric against
the same-style held-out set shows how much of what the model learned depends on it:

* ``noise``: detector noise TEXTURE: spatially correlated (blotchy) quantum noise of
  strongly denoised exports and fixed-pattern row / column banding of a flat panel,
  where training only sees white Poisson + electronic noise behind a Gaussian PSF;
* ``display``: vendor display processing beyond the trained ranges: unsharp masking of
  amount 1.6-2.5 at 5-8 px (trained: <= 1.0 per stage, simulator and augmentation, at
  1-4 px), a sigmoid LUT of gain 10-14
  (trained: 3-8) and a plain (not motion-adaptive) recursive temporal filter of weight
  0.88-0.93 that leaves lag trails behind moving instruments (trained: <= 0.85,
  motion-adaptive);
* ``spacing``: pixel spacing outside the trained 0.1-0.3 mm on both sides (0.05-0.085 mm
  or 0.34-0.5 mm at 512 px), i.e. anatomy at 2x or 0.6x the trained scale;
* ``instrument``: wires outside the trained width (1-4 px) on both sides (0.6-0.9 px or
  4.5-6 px) and denser than any trained wire (body line integral 0.5-0.9, trained
  <= 0.45);
* ``anatomy``: a background type not trained on: a pelvis (iliac wings with dense
  cortical rims, sacrum, femoral heads, trabecular texture) with bright bowel-gas
  pockets, where training renders thorax or abdomen (spine, ribs, lung markings).

``all`` applies every factor at once, and ``none`` renders the same sequences (same seeds)
without any held-out factor: the same-style reference each factor is compared with.
The ground truth is the simulator's: labels,
centerlines and tips of the current frame (a lag trail is not wire). Display and noise
styles and the pelvis are applied to the rendered display image (the simulator has no
such stage); spacing and instruments go through :class:`SimConfig`.

Never used for training or model selection: ``fluoro-sim styleset`` writes it, and
``fluoro-perception evaluate`` reports it (``docs/results.md``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import cv2
import numpy as np

from fluoro_perception.sim.types import SimFrame

STYLE_FACTORS: tuple[str, ...] = ("noise", "display", "spacing", "instrument", "anatomy")
#: The same-style reference, every factor alone, then all together.
STYLE_CHOICES: tuple[str, ...] = ("none", *STYLE_FACTORS, "all")


def _factors(style: str) -> tuple[str, ...]:
    if style not in STYLE_CHOICES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLE_CHOICES)}")
    return {"all": STYLE_FACTORS, "none": ()}.get(style, (style,))


def sim_overrides(style: str, rng: np.random.Generator) -> dict:
    """:class:`SimConfig` keyword overrides of one sequence of ``style``."""
    overrides: dict = {}
    factors = _factors(style)
    if "spacing" in factors:
        fine = rng.random() < 0.5
        overrides["pixel_spacing_mm_range"] = (0.05, 0.085) if fine else (0.34, 0.5)
    if "instrument" in factors:
        thin = rng.random() < 0.5
        overrides["wire_width_px_range"] = (0.6, 0.9) if thin else (4.5, 6.0)
        overrides["wire_attenuation_range"] = (0.5, 0.9)
    return overrides


def _to_unit(frame: SimFrame) -> tuple[np.ndarray, float]:
    full_scale = float(2**frame.bit_depth - 1)
    return frame.image.astype(np.float32) / np.float32(full_scale), full_scale


def _from_unit(unit: np.ndarray, frame: SimFrame, full_scale: float) -> np.ndarray:
    scaled = np.rint(np.clip(unit, 0.0, 1.0) * full_scale)
    out = scaled.astype(frame.image.dtype)
    out[~frame.field_mask] = frame.image[~frame.field_mask]
    return out


def unsharp_mask(image: np.ndarray, amount: float, sigma_px: float) -> np.ndarray:
    """Vendor-style edge enhancement: ``image + amount * (image - blur(image, sigma))``.

    Shared with the training augmentation (``fluoro_training.data.augment``), which draws
    smaller amounts and radii than the ``display`` style."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigma_px)
    return (image + amount * (image - blurred)).astype(np.float32)


def sigmoid_lut(image: np.ndarray, gain: float, inside: np.ndarray) -> np.ndarray:
    """A sigmoid display LUT centred on the field's median grey, rescaled to [0, 1]
    (shared with the training augmentation, which draws lower gains)."""
    centre = float(np.median(image[inside])) if inside.any() else 0.5
    low, high = (1.0 + np.exp(gain * (centre - np.array([0.0, 1.0])))) ** -1.0
    curve = (1.0 + np.exp(-gain * (image - centre))) ** -1.0
    return ((curve - low) / max(high - low, 1e-6)).astype(np.float32)


def pelvis_transmission(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """``(H, W)`` float32 multiplicative display factor of a pelvis with bowel gas.

    Bone darkens (factor < 1: iliac wings with a dense cortical rim, a sacrum, two femoral
    heads, trabecular texture), gas pockets brighten (factor > 1).
    """
    height, width = shape
    side = float(max(height, width))
    bone = np.zeros(shape, np.float32)
    rim = np.zeros(shape, np.float32)
    cx = width / 2 + rng.uniform(-0.1, 0.1) * width
    cy = height * rng.uniform(0.35, 0.6)
    for sign in (-1.0, 1.0):  # iliac wings
        centre = (int(cx + sign * 0.28 * side), int(cy - 0.05 * side))
        axes = (int(0.22 * side * rng.uniform(0.85, 1.15)), int(0.3 * side))
        angle = float(sign * rng.uniform(15.0, 30.0))
        cv2.ellipse(bone, centre, axes, angle, 0, 360, 1.0, -1)
        cv2.ellipse(rim, centre, axes, angle, 0, 360, 1.0, max(2, int(0.012 * side)))
    sacrum = np.array(
        [[cx - 0.1 * side, cy - 0.2 * side], [cx + 0.1 * side, cy - 0.2 * side],
         [cx + 0.05 * side, cy + 0.15 * side], [cx - 0.05 * side, cy + 0.15 * side]]
    )  # fmt: skip
    cv2.fillPoly(bone, [np.rint(sacrum).astype(np.int32)], 1.0)
    for sign in (-1.0, 1.0):  # femoral heads
        centre = (int(cx + sign * 0.33 * side), int(cy + 0.4 * side))
        radius = int(0.09 * side * rng.uniform(0.9, 1.1))
        cv2.circle(bone, centre, radius, 1.0, -1)
        cv2.circle(rim, centre, radius, 1.0, max(2, int(0.01 * side)))
    trabecular = cv2.GaussianBlur(rng.normal(0.0, 1.0, shape).astype(np.float32), (0, 0), 2.0)
    trabecular /= max(float(trabecular.std()), 1e-6)
    bone = cv2.GaussianBlur(bone, (0, 0), 0.01 * side)
    rim = cv2.GaussianBlur(rim, (0, 0), 1.5)
    gas = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(4, 10))):
        centre = (int(rng.uniform(0.1, 0.9) * width), int(rng.uniform(0.05, 0.5) * height))
        axes = (int(rng.uniform(0.03, 0.09) * side), int(rng.uniform(0.02, 0.06) * side))
        cv2.ellipse(gas, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    gas = cv2.GaussianBlur(gas, (0, 0), 0.01 * side)
    depth = rng.uniform(0.25, 0.4)
    darkening = depth * bone * (1.0 + 0.12 * trabecular) + 0.25 * rim
    return (np.exp(-darkening) * (1.0 + rng.uniform(0.15, 0.3) * gas)).astype(np.float32)


@dataclasses.dataclass
class StylePostProcessor:
    """Display-domain stages of one sequence of ``style`` (stateful: the temporal filter).

    Parameters
    ----------
    style : str
        One of :data:`STYLE_CHOICES`.
    seed : int
        Seed of the per-sequence draws (amounts, pattern, anatomy).
    """

    style: str
    seed: int

    def __post_init__(self) -> None:
        self.factors = _factors(self.style)
        rng = np.random.default_rng([self.seed, 5151])
        self._rng = rng
        self.unsharp_amount = float(rng.uniform(1.6, 2.5))
        self.unsharp_sigma_px = float(rng.uniform(5.0, 8.0))
        self.lut_gain = float(rng.uniform(10.0, 14.0))
        self.lag_weight = float(rng.uniform(0.88, 0.93))
        self.noise_sigma_px = float(rng.uniform(1.5, 2.5))
        self.noise_level = float(rng.uniform(0.012, 0.022))
        self.banding_level = float(rng.uniform(0.006, 0.014))
        self._pattern: np.ndarray | None = None
        self._pelvis: np.ndarray | None = None
        self._previous: np.ndarray | None = None

    def _banding(self, shape: tuple[int, int]) -> np.ndarray:
        if self._pattern is None:  # fixed pattern: the same every frame of the sequence
            rows = self._rng.normal(0.0, 1.0, (shape[0], 1))
            cols = self._rng.normal(0.0, 0.6, (1, shape[1]))
            self._pattern = (self.banding_level * (rows + cols)).astype(np.float32)
        return self._pattern

    def __call__(self, frame: SimFrame) -> SimFrame:
        """``frame`` with its image restyled (a new :class:`SimFrame`; GT unchanged)."""
        unit, full_scale = _to_unit(frame)
        if "anatomy" in self.factors:
            if self._pelvis is None:
                self._pelvis = pelvis_transmission(unit.shape, self._rng)
            unit = unit * self._pelvis
        if "noise" in self.factors:
            blotch = cv2.GaussianBlur(
                self._rng.normal(0.0, 1.0, unit.shape).astype(np.float32),
                (0, 0),
                self.noise_sigma_px,
            )
            blotch *= np.float32(self.noise_level / max(float(blotch.std()), 1e-6))
            unit = unit + blotch + self._banding(unit.shape)
        if "display" in self.factors:
            unit = unsharp_mask(unit, self.unsharp_amount, self.unsharp_sigma_px)
            unit = sigmoid_lut(unit, self.lut_gain, frame.field_mask)
            if self._previous is not None and self._previous.shape == unit.shape:
                unit = self.lag_weight * self._previous + (1.0 - self.lag_weight) * unit
            self._previous = unit.astype(np.float32)
        image = _from_unit(unit.astype(np.float32), frame, full_scale)
        params = {**frame.params, "style": self.style, "style_factors": list(self.factors)}
        return dataclasses.replace(frame, image=image, params=params)


def styled_frames(
    seed: int, style: str, n_frames: int, sequence_id: str, **config
) -> Iterator[SimFrame]:
    """``n_frames`` frames of one simulated sequence rendered in ``style``.

    ``config`` holds further :class:`SimConfig` keywords (size, scenario, bit depth); the
    style's own overrides are drawn from ``seed``.
    """
    from fluoro_perception.sim import SequenceSimulator, SimConfig

    overrides = sim_overrides(style, np.random.default_rng([seed, 5150]))
    simulator = SequenceSimulator(seed, SimConfig(**config, **overrides), sequence_id=sequence_id)
    post = StylePostProcessor(style, seed)
    frames = iter(simulator)
    for _ in range(n_frames):
        yield post(next(frames))


__all__ = [
    "STYLE_CHOICES",
    "STYLE_FACTORS",
    "StylePostProcessor",
    "pelvis_transmission",
    "sigmoid_lut",
    "sim_overrides",
    "styled_frames",
    "unsharp_mask",
]
