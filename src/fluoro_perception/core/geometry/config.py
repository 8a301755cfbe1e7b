"""Parameters of wire and stent geometry extraction (:class:`GeometryConfig`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Validation groups of :class:`GeometryConfig` fields.
_PROBABILITY_FIELDS = ("wire_threshold", "stent_threshold", "catheter_threshold")
_POSITIVE_FIELDS = (
    "spur_length_px",
    "junction_merge_px",
    "junction_trim_px",
    "max_junction_turn_rad",
    "gap_max_angle_rad",
    "resample_step_px",
    "tip_direction_length_px",
    "tip_curvature_length_px",
    "confidence_full_length_px",
    "catheter_contrast",
    "stent_outline_epsilon_px",
)
_NON_NEGATIVE_FIELDS = (
    "gap_bridge_px",
    "min_wire_length_px",
    "stent_bridge_px",
    "gap_lateral_px",
    "fork_min_branch_px",
    "max_component_width_px",
)
_INTEGER_MINIMUMS = {
    "min_component_px": 0,
    "hole_fill_px": 0,
    "direction_sample_px": 2,
    "max_wires": 1,
    "tip_search_radius_px": 0,
    "border_margin_px": 0,
    "stent_close_px": 0,
    "stent_touch_px": 0,
    "stent_min_area_px": 0,
    "max_wire_components": 1,
    "max_skeleton_px": 1,
    "max_graph_nodes": 1,
    "max_wire_chains": 1,
    "max_stents": 1,
}


@dataclass(frozen=True)
class GeometryConfig:
    """Parameters of wire and stent geometry extraction (all lengths on the input grid).

    Attributes
    ----------
    wire_threshold : float
        Guidewire probability at or above which a pixel is wire, in ``(0, 1)``.
    stent_threshold : float
        Stent probability at or above which a pixel is stent, in ``(0, 1)``.
    min_component_px : int
        Connected components (8-connectivity) smaller than this are removed [px^2].
    hole_fill_px : int
        Holes in the wire mask up to this area are filled before skeletonizing [px^2];
        0 (default) leaves them to the graph step, which removes the small skeleton
        loops they cause, and saves a labelling pass.
    spur_length_px : float
        Skeleton branches ending free and shorter than this are pruned [px].
    junction_merge_px : float
        Junctions joined by a skeleton edge at most this long become one node [px]; two
        3 px wires crossing at 25 deg share about 20 px of skeleton.
    junction_trim_px : float
        Skeleton length cut from each branch at a junction or bridged gap before the
        pieces are joined by a smooth curve (the skeleton bends there) [px].
    max_junction_turn_rad : float
        Largest turn allowed when continuing through a junction with 3+ branches [rad].
    direction_sample_px : int
        Path length used to estimate the direction of a branch at its end [px].
    gap_bridge_px : float
        Largest gap between two collinear chain ends that is bridged [px]; 0 disables.
    gap_max_angle_rad : float
        Largest angle between the two ends' directions, and between their mean direction
        and the gap vector, for bridging [rad].
    gap_lateral_px : float
        Sideways offset between two facing ends that is bridged whatever the gap's
        angle [px]: where struts or noise cut a wire every few pixels, the skeleton ends
        bend by up to about the wire's width, so short gaps look steep.
    stent_bridge_px : float
        Largest gap bridged where the wire runs through a stent [px]; 0 disables. A stent
        is delivered over the wire, so the wire continues under its struts, but pixels
        there are labelled stent and the wire mask breaks for the stent's length
        (8-40 mm, up to ~400 px at 0.1 mm/px).
        Both ends must touch the same stent (within ``stent_touch_px``) and each must
        point at the other end within twice ``gap_max_angle_rad`` (a stent on a curved
        vessel bends the wire inside it).
    stent_touch_px : int
        Distance from a chain end within which it touches a stent [px].
    fork_min_branch_px : float
        Dual-wire PCI: both wires leave the guide catheter together and overlap until they
        part, so the mask is a Y. A branch at least this long that ends on a wire's
        skeleton is returned as a second wire (branch + shared trunk), ranked below the
        wire it leaves [px]; 0 disables (only with ``max_wires`` >= 2).
    max_wires : int
        Most wire instances returned (2 for dual-guidewire PCI).
    min_wire_length_px : float
        Wires shorter than this (after bridging) are dropped [px].
    smoothing_window_px : int
        Savitzky-Golay window along the centerline (odd, >= 5), or 0 for no smoothing [px].
    resample_step_px : float
        Spacing of the returned centerline points [px].
    tip_direction_length_px : float
        Centerline length behind the tip used for the tip direction [px].
    tip_search_radius_px : int
        Half size of the window around an end where the tip heatmap is read [px].
    border_margin_px : int
        An end closer than this to the image border or outside the field is proximal [px].
    tip_curvature_length_px : float
        Length at each end over which curvature and radio-opacity are compared [px].
    confidence_full_length_px : float
        Wires shorter than this get a proportionally reduced confidence [px].
    catheter_threshold : float
        Catheter probability at or above which an end counts as inside a catheter.
    catheter_contrast : float
        Dark-tube contrast around an end, as a fraction of the wire's own contrast
        against the background, at or above which the end counts as inside a catheter
        when only the image is given.
    stent_close_px : int
        Diameter of the closing kernel that joins the strut mesh of a stent [px]; 0 off.
    stent_min_area_px : int
        Stent instances smaller than this after closing are dropped [px^2].
    stent_outline_epsilon_px : float
        Douglas-Peucker tolerance of the stent outline polygon [px].
    max_wire_components : int
        Cost cap: most connected components of the wire mask traced per frame, those
        with the longest bounding-box side first (a wire spans far; false-positive specks
        do not); the rest are skipped and counted (``caps_hit["wire_components"]``).
    max_component_width_px : float
        Cost cap: components of the wire mask whose mean width (area over the longest
        bounding-box side) exceeds this are blobs (contrast, saturated maps), not wires,
        and are not skeletonized (thinning costs one pass per pixel of thickness);
        counted (``caps_hit["wide_components"]``) [px]; 0 disables.
    max_skeleton_px : int
        Cost cap: most skeleton pixels traced into the pixel graph per frame (the graph
        walk costs per pixel; simulator frames through the shipped model have up to
        1,210); components are taken in the order above while they fit, the others are
        skipped and counted (``caps_hit["skeleton_px"]``) [px].
    max_graph_nodes : int
        Cost cap: most skeleton graph node pixels (ends and junction pixels: 1 or 3+
        skeleton neighbours) traced per frame (walking, spur pruning, junction pairing
        and joining cost per node; simulator frames through the shipped model have up
        to 173, distractor-dense ones up to 314); components are taken in the order
        above while they fit (and fit ``max_skeleton_px``), the others are skipped and
        counted (``caps_hit["graph_nodes"]``).
    max_wire_chains : int
        Cost cap: most chains (after junction pairing and gap bridging) long enough to be
        a wire or a fork's branch that are smoothed, scored and tried as forks, longest
        first (simulator frames have up to 16); counted (``caps_hit["wire_chains"]``).
    max_stents : int
        Most stent instances reported per frame, largest first (then sorted by
        confidence); counted when more qualify (``caps_hit["stents"]``).
    """

    wire_threshold: float = 0.5
    stent_threshold: float = 0.5
    min_component_px: int = 20
    hole_fill_px: int = 0
    spur_length_px: float = 8.0
    junction_merge_px: float = 25.0
    junction_trim_px: float = 4.0
    max_junction_turn_rad: float = 1.05
    direction_sample_px: int = 10
    gap_bridge_px: float = 15.0
    gap_max_angle_rad: float = 0.6
    gap_lateral_px: float = 4.0
    stent_bridge_px: float = 300.0
    stent_touch_px: int = 3
    fork_min_branch_px: float = 15.0
    max_wires: int = 2
    min_wire_length_px: float = 20.0
    smoothing_window_px: int = 9
    resample_step_px: float = 1.0
    tip_direction_length_px: float = 15.0
    tip_search_radius_px: int = 5
    border_margin_px: int = 3
    tip_curvature_length_px: float = 30.0
    confidence_full_length_px: float = 60.0
    catheter_threshold: float = 0.5
    catheter_contrast: float = 0.3
    stent_close_px: int = 5
    stent_min_area_px: int = 30
    stent_outline_epsilon_px: float = 1.0
    max_wire_components: int = 24
    max_component_width_px: float = 16.0
    max_skeleton_px: int = 1600
    max_graph_nodes: int = 400
    max_wire_chains: int = 16
    max_stents: int = 8

    def __post_init__(self) -> None:
        for name in _PROBABILITY_FIELDS:
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(
                    f"GeometryConfig.{name}={value!r}: expected a probability in (0, 1); "
                    "use e.g. 0.5."
                )
        for name in _POSITIVE_FIELDS:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"GeometryConfig.{name}={value!r}: expected a finite number > 0; "
                    "use the default or a positive value."
                )
        for name in _NON_NEGATIVE_FIELDS:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"GeometryConfig.{name}={value!r}: expected a finite number >= 0; "
                    "use 0 to disable."
                )
        for name, minimum in _INTEGER_MINIMUMS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"GeometryConfig.{name}={value!r}: expected an int >= {minimum}; "
                    "pass a whole number."
                )
        window = self.smoothing_window_px
        if (
            isinstance(window, bool)
            or not isinstance(window, int)
            or (window != 0 and (window < 5 or window % 2 == 0))
        ):
            raise ValueError(
                f"GeometryConfig.smoothing_window_px={window!r}: expected 0 (off) or an odd "
                "int >= 5; use e.g. 9."
            )
        if self.max_junction_turn_rad > math.pi or self.gap_max_angle_rad > math.pi:
            raise ValueError(
                f"GeometryConfig angles max_junction_turn_rad={self.max_junction_turn_rad!r}, "
                f"gap_max_angle_rad={self.gap_max_angle_rad!r}: expected values <= pi [rad]."
            )


#: Names of the cost caps counted in ``caps_hit`` (see the ``max_*`` fields above).
GEOMETRY_CAPS: tuple[str, ...] = (
    "wire_components",
    "wide_components",
    "skeleton_px",
    "graph_nodes",
    "wire_chains",
    "stents",
)


def new_caps_hit() -> dict[str, int]:
    """A ``caps_hit`` counter with every cap at 0 (keys :data:`GEOMETRY_CAPS`)."""
    return dict.fromkeys(GEOMETRY_CAPS, 0)


def _require_config(config: object) -> None:
    """Raise TypeError unless ``config`` is a :class:`GeometryConfig`."""
    if not isinstance(config, GeometryConfig):
        raise TypeError(
            f"config is a {type(config).__name__}: expected GeometryConfig; "
            "build one with GeometryConfig(...)."
        )
