"""The per-sequence draws: everything a :class:`~fluoro_perception.sim.SequenceSimulator`
fixes once for a run (:class:`Scene`), drawn by :func:`build_scene`.

:func:`build_scene` calls the steps in one fixed order, the order of the draws from the
scene generator; that order IS the seed contract (the same seed and config give
byte-identical frames), so a new draw goes after the existing ones or into a generator
of its own (as :func:`restyle_wire` and the per-wire insertion generators do).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from fluoro_perception.sim.anatomy import AnatomyLayers, build_anatomy
from fluoro_perception.sim.config import SCENARIOS, SimConfig
from fluoro_perception.sim.contrast import ContrastPlan, draw_contrast
from fluoro_perception.sim.field import FieldView, draw_field
from fluoro_perception.sim.instruments import WireSpec, arc_length
from fluoro_perception.sim.motion import InsertionProfile, SceneMotion, sample_motion_spec
from fluoro_perception.sim.physics import ImageFormation, ImagingSpec
from fluoro_perception.sim.stents import StentSpec, sample_stent_spec
from fluoro_perception.sim.tracks import (
    PlacedCatheter,
    PlacedStent,
    PlacedWire,
    Track,
    guide_catheter,
    pigtail_catheter,
    stiff_track,
    vessel_tracks,
    wireless_catheter,
)

#: A low-dose drop-out patch: canvas centre (2,), radius [px], fraction of contrast kept.
Dropout = tuple[np.ndarray, float, float]


@dataclass
class Scene:
    """Everything fixed for one sequence; frames only move and draw it.

    ``params`` is the per-sequence part of ``SimFrame.params``; ``blur_exposure`` is the
    exposure window (fraction of the frame interval) of wire motion blur, applied when
    a wire travels more than ``blur_min_travel_px`` in a frame.
    """

    scenario: str
    mm_per_px: float
    size_scale: float
    view: FieldView
    anatomy: AnatomyLayers
    contrast: ContrastPlan
    imaging: ImagingSpec
    formation: ImageFormation
    motion: SceneMotion
    catheters: list[PlacedCatheter]
    guide_catheter: bool
    blur_exposure: float
    dropouts: list[Dropout]
    wires: list[PlacedWire]
    stents: list[PlacedStent]
    wire_absent: bool = False
    params: dict = field(default_factory=dict)

    @property
    def pixel_spacing_m(self) -> float:
        return float(self.mm_per_px * 1e-3)

    @property
    def blur_min_travel_px(self) -> float:
        return 3.0 * self.size_scale


def sample_imaging(rng: np.random.Generator, config: SimConfig, size_scale: float) -> ImagingSpec:
    """Dose, noise, blur, processing and display mapping of one sequence (raw low-dose
    look with ``config.raw_probability``, else a processed clinical export)."""
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


def sample_wire_spec(
    rng: np.random.Generator, stiff: bool, faint: bool, size_scale: float, mm_per_px: float
) -> WireSpec:
    """Width, attenuation and tip shape of one guidewire (stiff EVAR wire or coronary)."""
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


def restyle_wire(
    spec: WireSpec, config: SimConfig, seed: int, index: int, size_scale: float
) -> WireSpec:
    """``spec`` with width / attenuation redrawn from the config's override ranges
    (an own generator per wire, so that no scene draw changes); unchanged without."""
    if config.wire_width_px_range is None and config.wire_attenuation_range is None:
        return spec
    rng = np.random.default_rng([seed, 4242, index])
    width, body = spec.width_px, spec.body_attenuation
    if config.wire_width_px_range is not None:
        width = float(rng.uniform(*config.wire_width_px_range) * max(size_scale, 0.5))
    if config.wire_attenuation_range is not None:
        body = float(rng.uniform(*config.wire_attenuation_range))
    coil = spec.tip_attenuation / spec.body_attenuation
    return replace(spec, width_px=width, body_attenuation=body, tip_attenuation=body * coil)


def draw_scenario(rng: np.random.Generator, config: SimConfig) -> str:
    """``config.scenario``, or one drawn with ``config.scenario_weights``."""
    if config.scenario is not None:
        return config.scenario
    weights = np.asarray(config.scenario_weights, dtype=np.float64)
    return str(rng.choice(SCENARIOS, p=weights / weights.sum()))


def draw_anatomy(
    rng: np.random.Generator,
    config: SimConfig,
    scenario: str,
    mm: float,
    view: FieldView,
    size_scale: float,
) -> tuple[str, bool, AnatomyLayers, float]:
    """Region, whether the wire tip makes excursions out of the field (drawn here, among
    the vessel draws, for the seed contract), the anatomy layers with the vessel tree,
    and the tree's iodine line integral per px of lumen chord."""
    height, width = config.height, config.width
    stiff = scenario == "stiff"
    region = "abdomen" if stiff or rng.random() < 0.2 else "thorax"
    fx0, fx1, fy0, fy1 = view.box
    pad = view.pad
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
        view.canvas_shape,
        mm,
        region,
        config.distractor_scale,
        root,
        vessel_heading,
        rng.uniform(3.0, 12.0) * size_scale,
        vessel_length,
        iodine_per_px,
        view.centre_px,
    )
    return region, excursion, anatomy, iodine_per_px


def draw_motion(
    motion_ss: np.random.SeedSequence, config: SimConfig, view: FieldView, stiff: bool, region: str
) -> SceneMotion:
    """Patient and table motion from its own seed stream (half as strong for EVAR)."""
    height, width = config.height, config.width
    motion_spec = sample_motion_spec(
        np.random.default_rng(motion_ss),
        height,
        width,
        config.motion_scale * (0.5 if stiff else 1.0),
        config.table_pan_probability,
        cardiac=region == "thorax",
    )
    return SceneMotion(motion_spec, height, width, view.pad, np.random.default_rng(motion_ss))


def draw_dropouts(
    rng: np.random.Generator, config: SimConfig, raw: bool, main_track: np.ndarray, mm: float
) -> list[Dropout]:
    """Low-dose drop-outs: patches of the patient where wires nearly vanish (twice as
    likely in raw low-dose sequences)."""
    dropouts: list[Dropout] = []
    dropout_probability = config.wire_dropout_probability * (2.0 if raw else 1.0)
    if rng.random() < min(dropout_probability, 1.0):
        for _ in range(int(rng.integers(1, 5))):
            # centred on the wire's track so that the gap actually hits the wire
            centre = main_track[int(rng.integers(len(main_track) // 3, len(main_track)))]
            dropouts.append(
                (
                    centre + rng.normal(0.0, 2.0, 2),
                    float(rng.uniform(3.0, 10.0) / mm / 2.0),
                    float(rng.uniform(0.1, 0.5)),
                )
            )
    return dropouts


def _insertion_profile(
    rng: np.random.Generator,
    wire_rng: np.random.Generator,
    config: SimConfig,
    view: FieldView,
    track: Track,
    arc: np.ndarray,
    speed: float,
    tip_excursion: bool,
    stiff: bool,
    size_scale: float,
) -> InsertionProfile:
    """How the wire on ``track`` is pushed and pulled: a tip excursion out of the field
    and back (``tip_excursion`` and the track leaves the field far enough), else
    manipulation from a drawn start depth."""
    min_out = track.access_arc_px + 15.0 * size_scale
    max_in = arc[-1] - 2.0
    exit_arc = view.exit_arc(track.points_px, arc, track.access_arc_px)
    use_excursion = tip_excursion and exit_arc is not None
    if use_excursion:
        amplitude = min(rng.uniform(25.0, 60.0) * size_scale, 0.8 * (exit_arc - min_out))
        use_excursion = amplitude > 5.0 * size_scale
    if use_excursion:
        return InsertionProfile(
            wire_rng, exit_arc, min_out, max_in, speed, config.fps, "excursion",
            exit_px=exit_arc, amplitude_px=amplitude,
            period_s=rng.uniform(*config.excursion_period_s_range),
        )  # fmt: skip
    visible_end = exit_arc if exit_arc is not None else max_in
    start = min_out + rng.uniform(0.3, 1.0) * max(visible_end - min_out, 0.0)
    return InsertionProfile(
        wire_rng, start, min_out, max_in, speed * (0.5 if stiff else 1.0), config.fps
    )


def draw_wires(
    rng: np.random.Generator,
    wire_rngs: list[np.random.Generator],
    config: SimConfig,
    seed: int,
    view: FieldView,
    tracks: list[Track],
    excursion: bool,
    faint: bool,
    stiff: bool,
    mm: float,
    size_scale: float,
) -> list[PlacedWire]:
    """One guidewire per track: spec (restyled by the config's overrides), insertion
    profile (the tip excursion only on the main wire) and rotation."""
    wires: list[PlacedWire] = []
    speed = rng.uniform(5.0, 35.0) / mm
    for k, track in enumerate(tracks):
        spec = sample_wire_spec(rng, stiff, faint, size_scale, mm)
        spec = restyle_wire(spec, config, seed, k, size_scale)
        arc = arc_length(track.points_px)
        profile = _insertion_profile(
            rng, wire_rngs[k], config, view, track, arc, speed, excursion and k == 0, stiff,
            size_scale,
        )  # fmt: skip
        wires.append(
            PlacedWire(
                instance_id=k + 1,
                spec=spec,
                track_px=track.points_px,
                track_arc_px=arc,
                catheter_arc_px=track.catheter_arc_px,
                access_arc_px=track.access_arc_px,
                profile=profile,
                rotation0_rad=rng.uniform(-np.pi, np.pi),
                rotation_amp_rad=rng.uniform(0.0, np.pi),
                rotation_hz=rng.uniform(0.1, 0.5),
                rotation_drift_rad_s=rng.uniform(-1.0, 1.0),
            )  # fmt: skip
        )
    return wires


def draw_stents(
    rng: np.random.Generator,
    scenario: str,
    wires: list[PlacedWire],
    anatomy: AnatomyLayers,
    mm: float,
    size_scale: float,
) -> list[PlacedStent]:
    """Stents: on the main wire in ``stent`` (25 %: plus an earlier implanted one on a
    side branch), an aortic stent-graft in 65 % of ``stiff``, else 5 % an implanted one."""
    stent_kinds: list[tuple[str, int]] = []
    if scenario == "stent":
        stent_kinds.append(
            (str(rng.choice(["balloon_expandable", "self_expanding"], p=[0.6, 0.4])), 0)
        )
        if rng.random() < 0.25:
            stent_kinds.append(("balloon_expandable", -1))
    elif scenario == "stiff" and rng.random() < 0.65:
        stent_kinds.append(("aortic", 0))
    elif rng.random() < 0.05:
        stent_kinds.append(("balloon_expandable", -1))
    stents: list[PlacedStent] = []
    for n, (kind, wire_index) in enumerate(stent_kinds):
        if wire_index >= 0:
            wire = wires[wire_index]
            track, arc = wire.track_px, wire.track_arc_px
            low = wire.access_arc_px + 5.0 * size_scale
            high = wire.profile.min_px if wire.profile.mode == "manipulate" else wire.access_arc_px
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
        stents.append(PlacedStent(n + 1, spec, track, arc))
    return stents


def sequence_params(scene: Scene, region: str, faint: bool, wireless: bool) -> dict:
    """The per-sequence part of ``SimFrame.params`` (key order is the JSON order)."""
    schedule = scene.contrast.schedule
    return {
        "scenario": scene.scenario,
        "region": region,
        "field_kind": scene.view.kind,
        "field_fraction": float(scene.view.mask.mean()),
        "mm_per_px": float(scene.mm_per_px),
        "contrast": scene.contrast.mode == "injection",
        "residual_contrast": scene.contrast.mode == "residual",
        "bolus_schedule": {k: v for k, v in (schedule or {}).items() if isinstance(v, float)},
        "tip_excursion": any(w.profile.mode == "excursion" for w in scene.wires),
        "faint_wire": faint,
        "catheters": len(scene.catheters),
        "wireless_catheter": wireless,
        "wire_dropouts": len(scene.dropouts),
        "n_wires": len(scene.wires),
        "n_stents": len(scene.stents),
        "distractors": list(scene.anatomy.distractors),
        "wire_width_px": [float(w.spec.width_px) for w in scene.wires],
        "wire_tip_shape": [w.spec.tip_shape for w in scene.wires],
        **scene.imaging.as_dict(),
    }


def build_scene(
    seed: int,
    config: SimConfig,
    rng: np.random.Generator,
    motion_ss: np.random.SeedSequence,
    wire_ss: np.random.SeedSequence,
) -> Scene:
    """Draw one sequence's scene from the scene generator ``rng`` (plus the motion and
    per-wire seed streams), step by step in the seed-contract order."""
    size_scale = max(config.height, config.width) / 512.0
    scenario = draw_scenario(rng, config)
    stiff = scenario == "stiff"
    mm = rng.uniform(*config.pixel_spacing_mm_range) / size_scale
    view = draw_field(rng, config, scenario)
    region, excursion, anatomy, iodine_per_px = draw_anatomy(
        rng, config, scenario, mm, view, size_scale
    )
    contrast = draw_contrast(rng, config, scenario, mm, anatomy, iodine_per_px)
    imaging = sample_imaging(rng, config, size_scale)
    formation = ImageFormation(imaging, view.mask, config.bit_depth)
    motion = draw_motion(motion_ss, config, view, stiff, region)
    # --- instruments
    wire_rngs = [np.random.default_rng(s) for s in wire_ss.spawn(2)]
    faint = bool(rng.random() < config.faint_wire_probability)
    if stiff:
        tracks, catheter_width = stiff_track(rng, view, size_scale)
    else:
        tracks, catheter_width = vessel_tracks(
            rng, view, scenario, anatomy.branches, excursion, size_scale
        )
    has_guide = tracks[0].catheter_arc_px > 0
    catheters = [guide_catheter(rng, tracks[0], catheter_width, mm)] if has_guide else []
    # motion blur of fast wire moves: exposure window 20-60 % of the frame interval
    # (pulse width + detector lag), applied when the wire travels > 3 px in a frame
    blur_exposure = float(rng.uniform(0.2, 0.6))
    if stiff and rng.random() < 0.5:
        catheters.append(pigtail_catheter(rng, view, mm, size_scale))
    wireless = not stiff and rng.random() < 0.25
    if wireless:
        catheters.append(wireless_catheter(rng, view, mm, size_scale))
    dropouts = draw_dropouts(rng, config, imaging.raw, tracks[0].points_px, mm)
    wires = draw_wires(
        rng, wire_rngs, config, seed, view, tracks, excursion, faint, stiff, mm, size_scale
    )
    stents = draw_stents(rng, scenario, wires, anatomy, mm, size_scale)
    scene = Scene(
        scenario=scenario, mm_per_px=mm, size_scale=size_scale, view=view, anatomy=anatomy,
        contrast=contrast, imaging=imaging, formation=formation, motion=motion,
        catheters=catheters, guide_catheter=has_guide, blur_exposure=blur_exposure,
        dropouts=dropouts, wires=wires, stents=stents,
    )  # fmt: skip
    scene.params = sequence_params(scene, region, faint, wireless)
    # drawn last and only when enabled, so that it changes no other draw
    scene.wire_absent = bool(
        config.wire_absent_probability > 0 and rng.random() < config.wire_absent_probability
    )
    if scene.wire_absent:
        scene.params.update(wire_absent=True, n_wires=0, n_stents=0)
    return scene


__all__ = [
    "Dropout",
    "Scene",
    "build_scene",
    "draw_anatomy",
    "draw_dropouts",
    "draw_motion",
    "draw_scenario",
    "draw_stents",
    "draw_wires",
    "restyle_wire",
    "sample_imaging",
    "sample_wire_spec",
    "sequence_params",
]
