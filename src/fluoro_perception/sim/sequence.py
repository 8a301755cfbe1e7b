"""The frame-sequence simulator: :class:`SequenceSimulator` and :func:`simulate_sequence`.

One :class:`SequenceSimulator` is one fluoroscopy run: at construction it draws every
parameter of the run from the ranges in :class:`SimConfig` (scenario, pixel spacing,
dose, noise, blur, display mapping, field shape, anatomy, distractors, instruments,
motion) and builds the static anatomy canvas once
(:func:`~fluoro_perception.sim.scene.build_scene`); each frame then warps that canvas,
draws the moving instruments, forms the X-ray image and rasterizes the ground truth
(:func:`~fluoro_perception.sim.render.render_frame`).

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

The configuration names (:class:`SimConfig`, :data:`SCENARIOS`, ...) live in
:mod:`fluoro_perception.sim.config` and are re-exported here for existing imports.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fluoro_perception.sim.config import (
    DEFAULT_SCENARIO_WEIGHTS,
    FIELD_KINDS,
    SCENARIOS,
    SUPPORTED_BIT_DEPTHS,
    SimConfig,
)

# re-exported for existing imports (``test_simulator`` imports ``sequence._bolus_at``)
from fluoro_perception.sim.contrast import bolus_at as _bolus_at  # noqa: F401
from fluoro_perception.sim.render import BLUR_SAMPLES, render_frame
from fluoro_perception.sim.scene import build_scene
from fluoro_perception.sim.tracks import PlacedWire
from fluoro_perception.sim.types import SimFrame


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
        self._noise_rng = np.random.default_rng(noise_ss)
        self._next_index = 0
        self._scene = build_scene(
            self.seed, config, np.random.default_rng(scene_ss), motion_ss, wire_ss
        )
        self.scenario = self._scene.scenario
        self.pixel_spacing_m = self._scene.pixel_spacing_m
        self.field_mask = self._scene.view.mask
        self.imaging = self._scene.imaging

    @property
    def _wires(self) -> list[PlacedWire]:
        """The sequence's placed guidewires (``test_styles`` reads their specs)."""
        return self._scene.wires

    def __iter__(self) -> Iterator[SimFrame]:
        while True:
            yield self._render_next()

    def frames(self, n: int, step: int = 1) -> list[SimFrame]:
        """The next ``n`` frames, every ``step``-th frame of the run (``step=1``:
        consecutive; ``step=10`` at 15 frames/s: one frame per 0.67 s, so a few frames
        span a contrast injection's wash-in and wash-out). Frames in between are not
        rendered; their ``frame_index`` and ``timestamp_s`` say where each lies."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n={n!r} must be a non-negative int number of frames")
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 1:
            raise ValueError(f"step={step!r} must be an int >= 1 (1 = consecutive frames)")
        return [self._render_next(int(step)) for _ in range(int(n))]

    def _render_next(self, step: int = 1) -> SimFrame:
        index = self._next_index
        self._next_index += step
        return render_frame(self._scene, self.config, index, self._noise_rng, self.sequence_id)


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


__all__ = [
    "BLUR_SAMPLES",
    "DEFAULT_SCENARIO_WEIGHTS",
    "FIELD_KINDS",
    "SCENARIOS",
    "SUPPORTED_BIT_DEPTHS",
    "SequenceSimulator",
    "SimConfig",
    "simulate_sequence",
]
