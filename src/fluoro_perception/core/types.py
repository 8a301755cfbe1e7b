"""Typed hand-offs between the pipeline stages.

Conventions used everywhere in the project:

* Pixel coordinates are ``(x, y)`` in the *input image's* pixel grid: x to the right,
  y down, pixel centres at integer coordinates. Arrays of points have shape ``(N, 2)``.
* Angles are in radians in the image plane, measured from +x towards +y
  (``atan2(dy, dx)``), so they follow the image frame (x right, y down, z into the
  detector).
* Times are nanoseconds (``stamp_ns``, int) as in ROS ``builtin_interfaces/Time``.
* Class indices follow :data:`CLASS_NAMES` unless a model's metadata says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Default class order of label maps and model logits.
CLASS_NAMES: tuple[str, ...] = ("background", "guidewire", "stent")
BACKGROUND, GUIDEWIRE, STENT = 0, 1, 2
#: Extra ground-truth class written by the simulator (catheter tube). Models trained
#: with the default config map it to background; a model may list it in its metadata.
CATHETER = 3
GT_CLASS_NAMES: tuple[str, ...] = ("background", "guidewire", "stent", "catheter")
#: Extra model class (issue 12: tell the network what the wire is not): contrast-filled
#: vessel, trained from the simulator's vessel mask (``SimFrame.vessel_mask``) where the
#: label map says background. Not a label-map class of datasets (a wire inside a filled
#: lumen is on both); the runtime treats it as background, like the catheter.
VESSEL = 4
MODEL_CLASS_NAMES: tuple[str, ...] = (*GT_CLASS_NAMES, "vessel")


@dataclass(frozen=True)
class WireDetection:
    """One guidewire instance found in one frame.

    Attributes
    ----------
    wire_id : int
        Instance index within the frame (0 = primary wire: the most confident one).
    centerline_px : np.ndarray
        ``(N, 2)`` float32 ordered centerline, **tip first**, sub-pixel [px].
    tip_px : np.ndarray
        ``(2,)`` tip position, equal to ``centerline_px[0]`` [px].
    tip_direction_rad : float
        Direction the tip points to (from the wire body towards the tip) [rad].
    confidence : float
        In ``[0, 1]``: combines segmentation probability along the centerline and the
        tip-heatmap response at the tip.
    length_px : float
        Arc length of the centerline [px].
    """

    wire_id: int
    centerline_px: np.ndarray
    tip_px: np.ndarray
    tip_direction_rad: float
    confidence: float
    length_px: float


@dataclass(frozen=True)
class StentDetection:
    """One stent instance found in one frame.

    ``outline_px`` is a closed polygon ``(M, 2)`` [px]; ``axis_rad`` the direction of the
    principal (long) axis in ``[-pi/2, pi/2)`` [rad]; length along, diameter across the
    axis [px].
    """

    stent_id: int
    outline_px: np.ndarray
    centroid_px: np.ndarray
    axis_rad: float
    length_px: float
    diameter_px: float
    confidence: float


@dataclass(frozen=True)
class TipTrack:
    """Filtered state of one tracked guidewire tip (constant-velocity Kalman filter).

    ``covariance`` is the 4x4 covariance of ``(x, y, vx, vy)`` in px and px/s.
    ``missed_frames`` counts consecutive frames without an associated detection
    (the track is *coasting* when it is > 0).
    """

    track_id: int
    stamp_ns: int
    position_px: np.ndarray
    velocity_px_s: np.ndarray
    covariance: np.ndarray
    direction_rad: float
    age_frames: int
    missed_frames: int

    @property
    def coasting(self) -> bool:
        return self.missed_frames > 0


@dataclass
class FrameResult:
    """Everything the pipeline computed for one input frame.

    Masks are at the input image's resolution: ``labels`` holds class indices (uint8),
    ``guidewire_mask`` / ``stent_mask`` are uint8 0/255. ``wires[0]`` is the primary wire.
    ``timings_ms`` maps stage name -> wall time of that stage [ms].
    ``geometry_caps_hit`` maps each geometry cost cap (``core.geometry.GEOMETRY_CAPS``)
    -> items it left out in this frame (0 when it did not bite).
    """

    stamp_ns: int
    labels: np.ndarray
    guidewire_mask: np.ndarray
    stent_mask: np.ndarray
    wires: list[WireDetection] = field(default_factory=list)
    stents: list[StentDetection] = field(default_factory=list)
    tracks: list[TipTrack] = field(default_factory=list)
    tip_heatmap: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    geometry_caps_hit: dict[str, int] = field(default_factory=dict)

    @property
    def primary_wire(self) -> WireDetection | None:
        return self.wires[0] if self.wires else None
