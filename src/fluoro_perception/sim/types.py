"""Ground-truth records produced by the fluoroscopy simulator.

Coordinates follow :mod:`fluoro_perception.core.types`: ``(x, y)`` pixels, x right,
y down, pixel centres at integer coordinates; angles ``atan2(dy, dx)`` [rad].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class WireTruth:
    """One guidewire in one frame.

    ``centerline_px`` is ``(N, 2)`` float32, ordered **tip first**, sub-pixel, covering
    the part of the wire that is inside the exposed field and outside the catheter.
    ``tip_visible`` is False when the tip is outside the field of view (then
    ``centerline_px[0]`` is where the wire leaves the field, not the tip).
    """

    instance_id: int
    kind: str  # "guidewire" | "stiff_guidewire"
    centerline_px: np.ndarray
    tip_px: np.ndarray
    tip_direction_rad: float
    tip_visible: bool
    width_px: float


@dataclass(frozen=True)
class StentTruth:
    """One stent in one frame (outline is a closed polygon ``(M, 2)``)."""

    instance_id: int
    kind: str  # "balloon_expandable" | "self_expanding" | "aortic"
    outline_px: np.ndarray
    centroid_px: np.ndarray
    axis_rad: float
    length_px: float
    diameter_px: float
    deployed_fraction: float


@dataclass
class SimFrame:
    """One simulated frame with full ground truth.

    Attributes
    ----------
    image : np.ndarray
        ``(H, W)`` uint8 (``bit_depth`` 8) or uint16 (``bit_depth`` 12 or 16) display
        image: instruments DARK on a lighter background.
    labels : np.ndarray
        ``(H, W)`` uint8 class indices, see ``fluoro_perception.core.types.GT_CLASS_NAMES``
        (0 background, 1 guidewire, 2 stent, 3 catheter). Zero outside the field.
    wire_instances : np.ndarray
        ``(H, W)`` uint8, 0 = no wire, k = ``WireTruth.instance_id`` k.
    field_mask : np.ndarray
        ``(H, W)`` bool, True inside the exposed (collimated) field.
    vessel_mask : np.ndarray or None
        ``(H, W)`` bool, True on contrast-filled vessel: the frame's iodine line integral
        is at least :data:`~fluoro_perception.sim.contrast.VESSEL_MASK_MIN_LINE_INTEGRAL`
        (the faintest regular guidewire body). Independent of ``labels`` (a wire inside
        a filled vessel is on both); False outside the field and in frames without
        contrast. None: not known (data without vessel ground truth).
    """

    image: np.ndarray
    bit_depth: int
    labels: np.ndarray
    wire_instances: np.ndarray
    field_mask: np.ndarray
    wires: list[WireTruth]
    stents: list[StentTruth]
    pixel_spacing_m: float
    sequence_id: str
    frame_index: int
    timestamp_s: float
    scenario: str
    params: dict = field(default_factory=dict)
    vessel_mask: np.ndarray | None = None
