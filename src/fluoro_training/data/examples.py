"""Turn one annotated frame into a training example on the model grid.

Example dict (tensors, before batching):

* ``image``: ``(1, h, w)`` float32, the network input exactly as the runtime prepares it
  (``fluoro_perception.core.preprocess.Preprocessor``);
* ``labels``: ``(h, w)`` int64 class indices (catheter mapped to background for
  3-class models, contrast vessel a class of its own for 5-class ones); :data:`IGNORE_INDEX` marks wire pixels of a wire too faint to see
  (``data.wire_visibility_floor``), which pass no gradient;
* ``tip_heatmap``: ``(1, h, w)`` float32 Gaussian targets at the visible wire tips;
* ``tips``: ``(max_tips, 3)`` float32 rows ``(x, y, valid)`` on the model grid [px];
* ``box``: ``(5,)`` float32 ``(x_min, y_min, x_max, y_max, valid)`` [px], the RoI box of
  L-SNet (seed 004 Sec. 2.1): the bounding box of all foreground pixels (labels > 0 after
  the class mapping) of the (cropped) frame, with continuous edges (a pixel at integer
  ``x`` covers ``[x - 0.5, x + 0.5]``), extended to contain every visible tip; all zeros
  with ``valid = 0`` when the frame has neither foreground nor a visible tip.
"""

from __future__ import annotations

import numpy as np
import torch

from fluoro_perception.core.decode import to_mono_float
from fluoro_perception.core.preprocess import Preprocessor
from fluoro_perception.core.types import CATHETER, VESSEL
from fluoro_perception.sim.types import SimFrame
from fluoro_training.config import DataConfig
from fluoro_training.data.augment import AugmentConfig, Sample, augment
from fluoro_training.losses.tip_heatmap import gaussian_tip_targets

MAX_TIPS = 4
#: Label of pixels that must not be learned from (kept through warps, crops and the
#: class mapping; the trainer detaches the logits there).
IGNORE_INDEX = 255


def frame_to_sample(
    image: np.ndarray, bit_depth: int, labels: np.ndarray, tips_px: np.ndarray, field_mask
) -> Sample:
    """Raw frame (uint8/uint16) + GT -> float sample in [0, 1] (catheter kept for now)."""
    encoding = "mono8" if image.dtype == np.uint8 else "mono16"
    image01 = to_mono_float(image, encoding, bit_depth=bit_depth)
    if field_mask is None:
        field_mask = np.ones(image.shape, bool)
    points = np.asarray(tips_px, np.float32).reshape(-1, 2)
    return Sample(image01.astype(np.float32), labels.astype(np.uint8), points, field_mask)


def _crop_origin(
    labels: np.ndarray,
    crop: tuple[int, int],
    rng: np.random.Generator,
    tips: np.ndarray | None = None,
    tip_fraction: float = 0.0,
) -> tuple[int, int]:
    """Crop origin (y0, x0). With visible ``tips`` ``(N, 2)`` (x, y) [px], a share
    ``tip_fraction`` of crops is centred on a random tip (jittered by up to a quarter of
    the crop); of the rest, 70 % are centred on a random foreground pixel (instruments:
    contrast-vessel pixels of 5-class models are not foreground here), the others
    anywhere."""
    height, width = labels.shape
    crop_h, crop_w = crop
    centre: tuple[int, int] | None = None  # (cy, cx)
    if tips is not None and len(tips) and tip_fraction > 0 and rng.random() < tip_fraction:
        cx, cy = (int(round(float(v))) for v in tips[rng.integers(len(tips))])
        centre = (cy, cx)
    else:
        foreground = np.flatnonzero((labels != 0) & (labels != VESSEL))
        if foreground.size and rng.random() < 0.7:
            centre = divmod(int(foreground[rng.integers(foreground.size)]), width)
    if centre is not None:
        cy, cx = centre
        y0 = cy - crop_h // 2 + int(rng.integers(-crop_h // 4, crop_h // 4 + 1))
        x0 = cx - crop_w // 2 + int(rng.integers(-crop_w // 4, crop_w // 4 + 1))
    else:
        y0 = int(rng.integers(0, height - crop_h + 1))
        x0 = int(rng.integers(0, width - crop_w + 1))
    return int(np.clip(y0, 0, height - crop_h)), int(np.clip(x0, 0, width - crop_w))


def foreground_box(labels: np.ndarray, tips_px: np.ndarray) -> np.ndarray:
    """RoI box ``(x_min, y_min, x_max, y_max, valid)`` [px] of a label map and tips.

    Parameters
    ----------
    labels : np.ndarray
        ``(H, W)`` class indices; every non-zero pixel is foreground except contrast
        vessel (:data:`~fluoro_perception.core.types.VESSEL`: not an instrument).
    tips_px : np.ndarray
        ``(N, 2)`` visible tips ``(x, y)`` [px], ``N`` may be 0.

    Returns
    -------
    np.ndarray
        ``(5,)`` float32; pixel ``(x, y)`` contributes ``[x - 0.5, x + 0.5] x
        [y - 0.5, y + 0.5]`` (pixel centres at integers), tips contribute the same
        half-pixel square around themselves.
    """
    rows, cols = np.nonzero((labels != 0) & (labels != VESSEL))
    xs = np.concatenate([cols.astype(np.float64), np.asarray(tips_px, np.float64)[:, 0]])
    ys = np.concatenate([rows.astype(np.float64), np.asarray(tips_px, np.float64)[:, 1]])
    if xs.size == 0:
        return np.zeros(5, np.float32)
    return np.array(
        [xs.min() - 0.5, ys.min() - 0.5, xs.max() + 0.5, ys.max() + 0.5, 1.0], np.float32
    )


def make_example(
    sample: Sample,
    preprocessor: Preprocessor,
    rng: np.random.Generator,
    *,
    num_classes: int = 3,
    augment_config: AugmentConfig | None = None,
    crop_size: tuple[int, int] | None = None,
    tip_sigma_px: float = 2.0,
    tip_crop_fraction: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Augment (optional), preprocess as the runtime does, map classes, crop, add targets.

    Parameters
    ----------
    sample : Sample
        Raw frame in ``[0, 1]`` with labels, visible tips ``(N, 2)`` [px] and field mask.
    preprocessor : Preprocessor
        The runtime's preprocessing for the model's ``PreprocessSpec``.
    rng : np.random.Generator
        Source of every random draw (augmentation and crop position).
    num_classes : int
        Model classes; label indices ``>= num_classes`` (catheter for 3-class models,
        stent and catheter for 2-class) become background.
    augment_config : AugmentConfig or None
        None disables augmentation (validation).
    crop_size : (int, int) or None
        ``(h, w)`` random crop of the model grid [px]; None keeps the whole grid.
    tip_sigma_px : float
        Standard deviation of the Gaussian tip targets [px].
    tip_crop_fraction : float
        Share of crops centred on a visible tip (``data.tip_crop_fraction``).

    Returns
    -------
    dict[str, torch.Tensor]
        See the module docstring.
    """
    if augment_config is not None:
        sample = augment(sample, rng, augment_config)
    net_input, transform, _ = preprocessor(sample.image)  # (1, 1, h, w)
    labels = transform.image_to_model(sample.labels, "nearest").astype(np.int64)
    if num_classes <= CATHETER:
        labels[(labels >= num_classes) & (labels != IGNORE_INDEX)] = 0
    tips = transform.points_to_model(sample.points) if len(sample.points) else sample.points
    image = net_input[0]  # (1, h, w)
    if crop_size is not None and tuple(crop_size) != labels.shape:
        y0, x0 = _crop_origin(labels, crop_size, rng, tips, tip_crop_fraction)
        crop_h, crop_w = crop_size
        image = image[:, y0 : y0 + crop_h, x0 : x0 + crop_w]
        labels = labels[y0 : y0 + crop_h, x0 : x0 + crop_w]
        if len(tips):
            tips = tips - np.array([x0, y0], np.float32)
    height, width = labels.shape
    inside = (
        (tips[:, 0] >= 0)
        & (tips[:, 0] <= width - 1)
        & (tips[:, 1] >= 0)
        & (tips[:, 1] <= height - 1)
        if len(tips)
        else np.zeros(0, bool)
    )
    visible = tips[inside][:MAX_TIPS] if len(tips) else tips
    heatmap = gaussian_tip_targets(visible, (height, width), sigma_px=tip_sigma_px)
    tip_rows = np.zeros((MAX_TIPS, 3), np.float32)
    tip_rows[: len(visible), :2] = visible
    tip_rows[: len(visible), 2] = 1.0
    box = foreground_box(labels, visible.reshape(-1, 2))
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image, np.float32)),
        "labels": torch.from_numpy(np.ascontiguousarray(labels)),
        "tip_heatmap": torch.from_numpy(heatmap[None].astype(np.float32)),
        "tips": torch.from_numpy(tip_rows),
        "box": torch.from_numpy(box),
    }


def visible_tips(frame: SimFrame) -> np.ndarray:
    """``(N, 2)`` float32 tips ``(x, y)`` [px] of the frame's wires whose tip is in view."""
    tips = [w.tip_px for w in frame.wires if w.tip_visible]
    return np.asarray(tips, np.float32).reshape(-1, 2)


def below_visibility_floor(frame: SimFrame, floor: float) -> list[int]:
    """Instance ids of the frame's wires whose contrast-to-noise ratio along the labelled
    centerline (:func:`fluoro_training.data.visibility.wire_cnr`) is below ``floor``."""
    from fluoro_training.data.visibility import wire_cnr

    if floor <= 0 or not frame.wires:
        return []
    image = to_mono_float(
        frame.image, "mono8" if frame.image.dtype == np.uint8 else "mono16", frame.bit_depth
    )
    faint = []
    for wire in frame.wires:
        own = frame.wire_instances == wire.instance_id
        labels = np.where(own, 1, np.where(frame.labels > 0, CATHETER, 0)).astype(np.uint8)
        if wire_cnr(image, labels, frame.field_mask) < floor:
            faint.append(int(wire.instance_id))
    return faint


def with_vessel_class(labels: np.ndarray, vessel_mask: np.ndarray) -> np.ndarray:
    """A copy of the class-index map ``labels`` ``(H, W)`` uint8 with the contrast-vessel
    pixels (``vessel_mask`` ``(H, W)`` bool) that it labels background set to
    :data:`~fluoro_perception.core.types.VESSEL`; wire, stent and catheter pixels inside
    a filled lumen keep their class."""
    if vessel_mask.shape != labels.shape:
        raise ValueError(
            f"vessel_mask shape {vessel_mask.shape}; expected the labels' {labels.shape}"
        )
    out = labels.copy()
    out[(labels == 0) & vessel_mask.astype(bool, copy=False)] = VESSEL
    return out


def training_example(
    frame: SimFrame,
    preprocessor: Preprocessor,
    rng: np.random.Generator,
    data: DataConfig,
    *,
    num_classes: int,
    augment_config: AugmentConfig | None,
) -> dict[str, torch.Tensor]:
    """One augmented training crop of a simulated or loaded frame (both streams use it).

    With ``data.wire_visibility_floor`` > 0, a wire whose CNR is below it is not asked
    for: its pixels become :data:`IGNORE_INDEX` and its tip is no tip target. A 5-class
    model (``model.num_classes: 5``) learns the frame's contrast-vessel mask as class
    :data:`~fluoro_perception.core.types.VESSEL` (:func:`with_vessel_class`); frames
    without a vessel mask (folders without ``vessels/`` PNGs) teach no vessel pixel.
    """
    labels, tips = frame.labels, visible_tips(frame)
    if num_classes > VESSEL and frame.vessel_mask is not None:
        labels = with_vessel_class(labels, frame.vessel_mask)
    faint = below_visibility_floor(frame, data.wire_visibility_floor)
    if faint:
        labels = labels.copy()
        labels[np.isin(frame.wire_instances, faint) & (labels == 1)] = IGNORE_INDEX
        tips = np.asarray(
            [w.tip_px for w in frame.wires if w.tip_visible and w.instance_id not in faint],
            np.float32,
        ).reshape(-1, 2)
    sample = frame_to_sample(frame.image, frame.bit_depth, labels, tips, frame.field_mask)
    return make_example(
        sample,
        preprocessor,
        rng,
        num_classes=num_classes,
        augment_config=augment_config,
        crop_size=tuple(data.crop_size),
        tip_sigma_px=data.tip_sigma_px,
        tip_crop_fraction=data.tip_crop_fraction,
    )
