"""Fluoroscopy augmentations applied consistently to image, labels and tip points.

Everything works on the raw frame before the shared runtime preprocessing
(``fluoro_perception.core.preprocess``), so the network always sees inputs prepared
exactly as the node prepares them. The set targets what differs between our simulator
and other sources (real C-arms, other simulators): geometry (flip, rotation, scale),
display mapping (gamma, window/level), detector (noise, blur) and collimation
(shutters / circular field, FGA-Net's "variable effective content", seed 002 Sec. 1).

Arrays: ``image`` (H, W) float32 in [0, 1]; ``labels`` (H, W) uint8 class indices;
``points`` (N, 2) float32 (x, y) [px]. Written here because no installed library
augments images, label maps *and* keypoints together without torchvision.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# one implementation for the augmentation and the style-held-out renders
from fluoro_perception.sim.styles import sigmoid_lut, unsharp_mask


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges (each draw independent per sample)."""

    p_flip: float = 0.5
    p_rotate: float = 0.7
    max_rotation_deg: float = 180.0
    scale_range: tuple[float, float] = (0.75, 1.35)
    p_gamma: float = 0.8
    gamma_range: tuple[float, float] = (0.6, 1.6)
    p_window: float = 0.8
    contrast_range: tuple[float, float] = (0.7, 1.4)
    brightness_range: tuple[float, float] = (-0.15, 0.15)
    p_noise: float = 0.6
    # Extra detector noise on top of the simulator's own: real exports have a high-pass
    # residual of ~1.5-4 grey levels (0.006-0.016), and a 1-3 px wire has a contrast of
    # only ~0.02-0.05; noise above that makes wires invisible and unlearnable.
    noise_std_range: tuple[float, float] = (0.002, 0.012)
    p_blur: float = 0.4
    # sigma > ~1 px erases 1 px wires entirely (the simulator already applies its PSF)
    blur_sigma_range: tuple[float, float] = (0.3, 0.9)
    p_collimation: float = 0.35
    # Display processing of other vendors (docs/real-fluoroscopy.md; the foreign check
    # generator's README lists log, unsharp masking and a sigmoid LUT): edge enhancement
    # by unsharp masking and a sigmoid LUT. The style-held-out test set
    # (``fluoro-sim styleset``) draws amounts and radii OUTSIDE these ranges.
    p_unsharp: float = 0.3
    unsharp_amount_range: tuple[float, float] = (0.2, 1.0)
    unsharp_sigma_px_range: tuple[float, float] = (1.0, 3.0)
    p_sigmoid_lut: float = 0.25
    sigmoid_gain_range: tuple[float, float] = (3.0, 8.0)
    # No intensity inversion: instruments are always dark on a C-arm display.


@dataclass
class Sample:
    """One raw annotated frame: ``image`` (H, W) float32 in [0, 1], ``labels`` (H, W) uint8,
    ``points`` (N, 2) float32 visible tips (x, y) [px], ``field_mask`` (H, W) bool."""

    image: np.ndarray
    labels: np.ndarray
    points: np.ndarray
    field_mask: np.ndarray


#: A warped foreground class keeps a pixel where its bilinearly interpolated indicator
#: reaches this: a 1 px line rotated by any angle keeps >= ~0.5 along its whole length,
#: so it stays connected, where nearest-neighbour sampling breaks it into dashes.
THIN_LABEL_LEVEL = 0.35


def warp_labels(labels: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Warp a class-index map without breaking 1 px structures (issue 12).

    Each foreground class's indicator is warped bilinearly; a pixel takes the class with
    the largest interpolated indicator when that reaches :data:`THIN_LABEL_LEVEL`, else
    background. On the identity and on flips this equals nearest-neighbour warping.
    """
    height, width = labels.shape
    out = np.zeros((height, width), np.uint8)
    best = np.full((height, width), THIN_LABEL_LEVEL, np.float32)
    for value in np.unique(labels):
        if value == 0:
            continue
        indicator = cv2.warpAffine(
            (labels == value).astype(np.float32), matrix, (width, height),
            flags=cv2.INTER_LINEAR, borderValue=0.0,
        )  # fmt: skip
        wins = indicator >= best
        out[wins] = value
        best[wins] = indicator[wins]
    return out


def _affine(sample: Sample, matrix: np.ndarray) -> Sample:
    height, width = sample.image.shape
    image = cv2.warpAffine(
        sample.image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0.0
    )
    labels = warp_labels(sample.labels, matrix)
    field = cv2.warpAffine(
        sample.field_mask.astype(np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST
    ).astype(bool)
    points = sample.points
    if len(points):
        points = (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
    return Sample(image, labels, points, field)


def _collimate(sample: Sample, rng: np.random.Generator) -> Sample:
    """Black out a random shutter pair or everything outside a random circle."""
    height, width = sample.image.shape
    keep = np.zeros((height, width), np.uint8)
    if rng.random() < 0.5:
        radius = rng.uniform(0.45, 0.75) * min(height, width)
        center = (
            int(width / 2 + rng.uniform(-0.1, 0.1) * width),
            int(height / 2 + rng.uniform(-0.1, 0.1) * height),
        )
        cv2.circle(keep, center, int(radius), 1, -1)
    else:
        x0, x1 = int(rng.uniform(0, 0.25) * width), int(rng.uniform(0.75, 1.0) * width)
        y0, y1 = int(rng.uniform(0, 0.25) * height), int(rng.uniform(0.75, 1.0) * height)
        keep[y0:y1, x0:x1] = 1
    inside = keep.astype(bool)
    image = np.where(inside, sample.image, 0.0).astype(np.float32)
    labels = np.where(inside, sample.labels, 0).astype(np.uint8)
    # a tip behind the shutter is no longer visible: drop it so no target sits on black
    points = sample.points
    if len(points):
        cols = np.clip(np.rint(points[:, 0]).astype(int), 0, width - 1)
        rows = np.clip(np.rint(points[:, 1]).astype(int), 0, height - 1)
        points = points[inside[rows, cols]]
    return Sample(image, labels, points, sample.field_mask & inside)


def augment(sample: Sample, rng: np.random.Generator, config: AugmentConfig) -> Sample:
    """Return an augmented copy of ``sample`` (points outside the frame are kept; callers
    decide visibility)."""
    height, width = sample.image.shape
    if rng.random() < config.p_flip:
        matrix = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])
        if rng.random() < 0.5:
            matrix = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, height - 1.0]])
        sample = _affine(sample, matrix)
    if rng.random() < config.p_rotate:
        angle = rng.uniform(-config.max_rotation_deg, config.max_rotation_deg)
        scale = rng.uniform(*config.scale_range)
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, scale)
        sample = _affine(sample, matrix)
    if rng.random() < config.p_collimation:
        sample = _collimate(sample, rng)

    image = sample.image
    inside = sample.field_mask
    if rng.random() < config.p_window:
        contrast = rng.uniform(*config.contrast_range)
        brightness = rng.uniform(*config.brightness_range)
        mean = float(image[inside].mean()) if inside.any() else 0.5
        image = (image - mean) * contrast + mean + brightness
    if rng.random() < config.p_gamma:
        image = np.clip(image, 0.0, 1.0) ** rng.uniform(*config.gamma_range)
    if rng.random() < config.p_blur:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*config.blur_sigma_range))
    if rng.random() < config.p_unsharp:
        image = unsharp_mask(
            image,
            rng.uniform(*config.unsharp_amount_range),
            rng.uniform(*config.unsharp_sigma_px_range),
        )
    if rng.random() < config.p_sigmoid_lut:
        image = sigmoid_lut(image, rng.uniform(*config.sigmoid_gain_range), inside)
    if rng.random() < config.p_noise:
        noise = rng.normal(0.0, rng.uniform(*config.noise_std_range), image.shape)
        image = image + noise.astype(np.float32)
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    # outside the exposed field stays black, as on a real collimated display
    image = np.where(inside, image, 0.0).astype(np.float32)
    return Sample(image, sample.labels, sample.points, inside)
