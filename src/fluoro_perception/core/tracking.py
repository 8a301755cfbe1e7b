"""Guidewire tip tracking across frames (stage 5 of the pipeline).

Each tip is followed by a constant-velocity Kalman filter (filterpy ``KalmanFilter``,
state ``(x, y, vx, vy)`` in px and px/s, white-noise acceleration process model with
``dt`` taken from the frame stamps). Detections are associated to tracks by the
Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on the squared
Mahalanobis distance of the innovation, gated by a chi-square bound and a pixel bound.
FRA-Net (seed 001_d0d03ac8067c31fe.txt, Sec. 1 and 3) tracks mono and dual guidewires by
segmenting every frame; this module adds the temporal filtering the control stack needs:
persistent ids through short dropouts, outlier rejection and velocity estimates.

Track life cycle: a detection that no track accepts starts a *tentative* track; it is
*confirmed* after ``min_hits_to_confirm`` associated frames and is deleted if it misses
a frame before that. A confirmed track *coasts* (prediction only, growing covariance)
for at most ``max_coast_frames`` consecutive frames and then ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment

from fluoro_perception.core.types import TipTrack, WireDetection

__all__ = ["TipTracker", "TrackerConfig"]

_NS_PER_S = 1_000_000_000
# Cost given to gated-out pairs so the assignment never prefers them.
_FORBIDDEN_COST = 1e9


@dataclass(frozen=True)
class TrackerConfig:
    """Parameters of the tip tracker.

    Attributes
    ----------
    process_noise_px_s2 : float
        Standard deviation of the white-noise acceleration of a tip [px/s^2]; cardiac
        motion of ~10 px amplitude at ~1 Hz gives accelerations of a few hundred px/s^2.
    measurement_noise_px : float
        Standard deviation of a detected tip position per axis [px].
    initial_velocity_std_px_s : float
        Standard deviation of the velocity of a new track [px/s].
    gate_chi2 : float
        Gate on the squared Mahalanobis distance of the innovation (2 dof; 13.8 is the
        99.9 % quantile).
    gate_px : float
        Largest distance between a prediction and a detection that can associate [px].
    max_coast_frames : int
        Consecutive frames a confirmed track may go without a detection before it ends.
    min_hits_to_confirm : int
        Associated frames (including the first) that make a tentative track confirmed.
    max_dt_s : float
        A forward gap between stamps longer than this resets the tracker [s].
    reset_on_time_jump_back : bool
        A stamp equal to or older than the last one resets the tracker (True) or the
        frame is ignored and counted in ``TipTracker.stale_frames`` (False).
    direction_smoothing : float
        Weight of a new tip direction in the exponential smoothing of the direction on the
        unit circle, in ``(0, 1]`` (1 = no smoothing).
    output_tentative : bool
        Also return tentative (not yet confirmed) tracks from ``update``.
    """

    process_noise_px_s2: float = 300.0
    measurement_noise_px: float = 1.5
    initial_velocity_std_px_s: float = 100.0
    gate_chi2: float = 13.8
    gate_px: float = 40.0
    max_coast_frames: int = 5
    min_hits_to_confirm: int = 3
    max_dt_s: float = 2.0
    reset_on_time_jump_back: bool = True
    direction_smoothing: float = 0.5
    output_tentative: bool = False

    def __post_init__(self) -> None:
        positive = (
            "process_noise_px_s2",
            "measurement_noise_px",
            "initial_velocity_std_px_s",
            "gate_chi2",
            "gate_px",
            "max_dt_s",
        )
        for name in positive:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(
                    f"TrackerConfig.{name}={value!r}: expected a finite number > 0; "
                    "use the default or a positive value."
                )
        for name, minimum in (("max_coast_frames", 0), ("min_hits_to_confirm", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"TrackerConfig.{name}={value!r}: expected an int >= {minimum}; "
                    "pass a whole number."
                )
        if not 0.0 < self.direction_smoothing <= 1.0:
            raise ValueError(
                f"TrackerConfig.direction_smoothing={self.direction_smoothing!r}: expected a "
                "weight in (0, 1]; use 1 for no smoothing."
            )
        for name in ("reset_on_time_jump_back", "output_tentative"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"TrackerConfig.{name}={getattr(self, name)!r}: expected a bool.")


class _Track:
    """One Kalman-filtered tip (internal, mutable)."""

    def __init__(
        self, track_id: int, stamp_ns: int, detection: WireDetection, config: TrackerConfig
    ) -> None:
        self.track_id = track_id
        kalman = KalmanFilter(dim_x=4, dim_z=2)
        tip = np.asarray(detection.tip_px, dtype=np.float64)
        kalman.x = np.array([tip[0], tip[1], 0.0, 0.0])
        kalman.H = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
        kalman.R = np.eye(2) * config.measurement_noise_px**2
        position_var = config.measurement_noise_px**2
        velocity_var = config.initial_velocity_std_px_s**2
        kalman.P = np.diag([position_var, position_var, velocity_var, velocity_var])
        self.kalman = kalman
        self.stamp_ns = stamp_ns
        self.direction_xy = np.array(
            [math.cos(detection.tip_direction_rad), math.sin(detection.tip_direction_rad)]
        )
        self.hits = 1
        self.age_frames = 1
        self.missed_frames = 0
        self.confirmed = config.min_hits_to_confirm <= 1

    def predict(self, dt_s: float, config: TrackerConfig) -> None:
        kalman = self.kalman
        kalman.F = np.array(
            [
                [1.0, 0.0, dt_s, 0.0],
                [0.0, 1.0, 0.0, dt_s],
                [0.0, 0.0, 1.0, 0.0],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
        # Discrete white-noise acceleration for the state order (x, y, vx, vy).
        kalman.Q = Q_discrete_white_noise(
            dim=2, dt=dt_s, var=config.process_noise_px_s2**2, block_size=2, order_by_dim=False
        )
        kalman.predict()
        self.age_frames += 1

    def innovation(self, tip_px: np.ndarray) -> tuple[float, float]:
        """Squared Mahalanobis distance and Euclidean distance [px] to a detected tip."""
        kalman = self.kalman
        residual = tip_px - kalman.H @ kalman.x
        innovation_cov = kalman.H @ kalman.P @ kalman.H.T + kalman.R
        mahalanobis2 = float(residual @ np.linalg.solve(innovation_cov, residual))
        return mahalanobis2, float(math.hypot(residual[0], residual[1]))

    def correct(self, detection: WireDetection, config: TrackerConfig) -> None:
        self.kalman.update(np.asarray(detection.tip_px, dtype=np.float64))
        new_direction = np.array(
            [math.cos(detection.tip_direction_rad), math.sin(detection.tip_direction_rad)]
        )
        # Smooth on the unit circle so the wrap at +-pi does not flip the mean.
        blended = (
            1 - config.direction_smoothing
        ) * self.direction_xy + config.direction_smoothing * new_direction
        norm = math.hypot(blended[0], blended[1])
        self.direction_xy = blended / norm if norm > 1e-9 else new_direction
        self.hits += 1
        self.missed_frames = 0
        if self.hits >= config.min_hits_to_confirm:
            self.confirmed = True

    def to_result(self, stamp_ns: int) -> TipTrack:
        state = self.kalman.x
        return TipTrack(
            track_id=self.track_id,
            stamp_ns=stamp_ns,
            position_px=state[:2].astype(np.float64).copy(),
            velocity_px_s=state[2:].astype(np.float64).copy(),
            covariance=self.kalman.P.copy(),
            direction_rad=float(math.atan2(self.direction_xy[1], self.direction_xy[0])),
            age_frames=self.age_frames,
            missed_frames=self.missed_frames,
        )


class TipTracker:
    """Multi-target tracker of guidewire tips (one track per wire tip).

    Track ids are unique over the tracker's lifetime (they keep counting after
    :meth:`reset`), so a downstream consumer never sees an id reused for another tip.

    Attributes
    ----------
    resets : int
        How many times the tracker reset itself (time jump back or gap > ``max_dt_s``).
    stale_frames : int
        Frames ignored because their stamp was not newer than the last one (only when
        ``reset_on_time_jump_back`` is False).
    rejected_detections : int
        Detections that no track accepted (outside every gate) while tracks existed;
        each started a tentative track.
    """

    def __init__(self, config: TrackerConfig) -> None:
        if not isinstance(config, TrackerConfig):
            raise TypeError(
                f"config is a {type(config).__name__}: expected TrackerConfig; "
                "build one with TrackerConfig(...)."
            )
        self.config = config
        self._tracks: list[_Track] = []
        self._last_stamp_ns: int | None = None
        self._next_id = 0
        self.resets = 0
        self.stale_frames = 0
        self.rejected_detections = 0

    def reset(self) -> None:
        """Drop all tracks and forget the last stamp (ids keep counting)."""
        self._tracks = []
        self._last_stamp_ns = None

    def update(self, stamp_ns: int, wires: Sequence[WireDetection]) -> list[TipTrack]:
        """Advance all tracks to ``stamp_ns`` and associate this frame's wire tips.

        Parameters
        ----------
        stamp_ns : int
            Frame stamp [ns]; must increase from frame to frame.
        wires : Sequence[WireDetection]
            This frame's wires; their ``tip_px`` are the measurements [px].

        Returns
        -------
        list[TipTrack]
            Confirmed tracks (and tentative ones if ``output_tentative``), coasting ones
            included, sorted by track id; positions in the grid of the wires given.
        """
        if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, (int, np.integer)):
            raise TypeError(
                f"stamp_ns={stamp_ns!r}: expected an int in nanoseconds; convert with "
                "sec * 10**9 + nanosec."
            )
        stamp_ns = int(stamp_ns)
        for wire in wires:
            if not isinstance(wire, WireDetection):
                raise TypeError(
                    f"wires holds a {type(wire).__name__}: expected WireDetection items "
                    "from geometry.extract_wires."
                )
        config = self.config
        if self._last_stamp_ns is not None:
            if stamp_ns <= self._last_stamp_ns:
                if not config.reset_on_time_jump_back:
                    self.stale_frames += 1
                    return self._results(self._last_stamp_ns)
                self.reset()
                self.resets += 1
            elif (stamp_ns - self._last_stamp_ns) / _NS_PER_S > config.max_dt_s:
                self.reset()
                self.resets += 1

        if self._last_stamp_ns is not None:
            dt_s = (stamp_ns - self._last_stamp_ns) / _NS_PER_S
            for track in self._tracks:
                track.predict(dt_s, config)
        self._last_stamp_ns = stamp_ns

        tips = [np.asarray(wire.tip_px, dtype=np.float64) for wire in wires]
        assigned_tracks: set[int] = set()
        assigned_wires: set[int] = set()
        if self._tracks and tips:
            # Confirmed tracks are served first: their cost is not inflated; a tentative
            # track only gets what no confirmed track can explain better.
            cost = np.full((len(self._tracks), len(tips)), _FORBIDDEN_COST)
            for row, track in enumerate(self._tracks):
                for column, tip in enumerate(tips):
                    mahalanobis2, distance_px = track.innovation(tip)
                    if mahalanobis2 <= config.gate_chi2 and distance_px <= config.gate_px:
                        cost[row, column] = mahalanobis2 + (0.0 if track.confirmed else 1.0)
            rows, columns = linear_sum_assignment(cost)
            for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
                if cost[row, column] >= _FORBIDDEN_COST:
                    continue
                self._tracks[row].correct(wires[column], config)
                assigned_tracks.add(row)
                assigned_wires.add(column)

        survivors = []
        for row, track in enumerate(self._tracks):
            if row not in assigned_tracks:
                track.missed_frames += 1
                if not track.confirmed or track.missed_frames > config.max_coast_frames:
                    continue  # a tentative track dies on its first miss; a coasting one ends
            survivors.append(track)
        had_tracks = bool(self._tracks)
        for column, wire in enumerate(wires):
            if column in assigned_wires:
                continue
            if had_tracks:
                self.rejected_detections += 1
            survivors.append(_Track(self._next_id, stamp_ns, wire, config))
            self._next_id += 1
        self._tracks = survivors
        return self._results(stamp_ns)

    def _results(self, stamp_ns: int) -> list[TipTrack]:
        shown = [t for t in self._tracks if t.confirmed or self.config.output_tentative]
        return [track.to_result(stamp_ns) for track in sorted(shown, key=lambda t: t.track_id)]
