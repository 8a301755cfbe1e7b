"""Patient, table and instrument motion for the fluoroscopy simulator.

Scene motion is a smooth displacement field ``d(x, t)`` [px] over the visible frame:
respiratory motion (about 0.2-0.3 Hz, global shifts of 5-30 px, stronger near the
diaphragm), cardiac motion (about 1 Hz, local deformation of a few px to 20 px around
the heart) and occasional table pans (sudden whole-scene shifts), after
``/work/shared/docs/real-fluoroscopy.md`` ("Geometry and timing"). The static anatomy
canvas (padded by ``pad_px``) is warped with :func:`cv2.remap`:
``frame(x) = canvas(x + pad + d(x))``; instrument points drawn in canvas coordinates are
mapped to the frame by inverting that relation (:meth:`SceneMotion.canvas_to_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MotionSpec:
    """Per-sequence motion parameters.

    Attributes
    ----------
    respiratory_hz : float
        Breathing frequency [Hz].
    respiratory_amplitude_px : float
        Peak global respiratory shift [px].
    respiratory_direction_rad : float
        Direction of the respiratory shift [rad] (mostly cranio-caudal, i.e. y).
    respiratory_phase_rad : float
        Phase at t = 0 [rad].
    cardiac_hz : float
        Heart rate [Hz].
    cardiac_amplitude_px : float
        Peak local cardiac displacement [px].
    cardiac_centre_px : tuple[float, float]
        Centre of the beating region in frame coordinates [px].
    cardiac_radius_px : float
        Gaussian radius of the beating region [px].
    pans : tuple[tuple[float, float, float, float], ...]
        Table pans ``(start_s, duration_s, dx_px, dy_px)``.
    """

    respiratory_hz: float
    respiratory_amplitude_px: float
    respiratory_direction_rad: float
    respiratory_phase_rad: float
    cardiac_hz: float
    cardiac_amplitude_px: float
    cardiac_centre_px: tuple[float, float]
    cardiac_radius_px: float
    pans: tuple[tuple[float, float, float, float], ...] = ()


def sample_motion_spec(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: float,
    pan_probability: float,
    cardiac: bool,
) -> MotionSpec:
    """Draw a :class:`MotionSpec` from documented ranges (``scale`` multiplies amplitudes;
    amplitudes are given for a 512 px frame and scaled with the frame size)."""
    size_scale = max(height, width) / 512.0
    pans = []
    if rng.random() < pan_probability:
        t = rng.uniform(0.5, 4.0)
        for _ in range(int(rng.integers(1, 3))):
            angle = rng.uniform(-np.pi, np.pi)
            dist = rng.uniform(15.0, 70.0) * size_scale * scale
            pans.append((t, rng.uniform(0.15, 0.6), dist * np.cos(angle), dist * np.sin(angle)))
            t += rng.uniform(2.0, 6.0)
    return MotionSpec(
        respiratory_hz=rng.uniform(0.18, 0.32),
        respiratory_amplitude_px=rng.uniform(5.0, 30.0) * size_scale * scale,
        respiratory_direction_rad=np.pi / 2 + rng.normal(0.0, 0.3),
        respiratory_phase_rad=rng.uniform(0, 2 * np.pi),
        cardiac_hz=rng.uniform(0.8, 1.5),
        cardiac_amplitude_px=(rng.uniform(3.0, 20.0) if cardiac else rng.uniform(0.0, 3.0))
        * size_scale
        * scale,
        cardiac_centre_px=(rng.uniform(0.3, 0.7) * width, rng.uniform(0.4, 0.8) * height),
        cardiac_radius_px=rng.uniform(0.25, 0.5) * max(height, width),
        pans=tuple(pans),
    )


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class SceneMotion:
    """Displacement fields and point mapping for one sequence.

    Parameters
    ----------
    spec : MotionSpec
        Motion parameters.
    height, width : int
        Frame size [px].
    pad_px : int
        Margin of the static canvas around the frame [px].
    rng : np.random.Generator
        Draws the spatial pattern of the cardiac deformation (once).
    grid_cells : int
        The displacement field is computed on a coarse grid and upsampled (cheap and
        smooth).
    """

    def __init__(
        self,
        spec: MotionSpec,
        height: int,
        width: int,
        pad_px: int,
        rng: np.random.Generator,
        grid_cells: int = 12,
    ) -> None:
        self.spec = spec
        self.height, self.width, self.pad_px = height, width, pad_px
        ys = np.linspace(0.0, height - 1.0, grid_cells, dtype=np.float32)
        xs = np.linspace(0.0, width - 1.0, grid_cells, dtype=np.float32)
        grid_x, grid_y = np.meshgrid(xs, ys)
        cx, cy = spec.cardiac_centre_px
        envelope = np.exp(
            -((grid_x - cx) ** 2 + (grid_y - cy) ** 2) / (2.0 * spec.cardiac_radius_px**2)
        )
        # contraction towards the heart centre plus a random smooth swirl
        radial_x, radial_y = (grid_x - cx), (grid_y - cy)
        norm = np.maximum(np.hypot(radial_x, radial_y), 1.0)
        swirl = rng.standard_normal((2, 3, 3)).astype(np.float32)
        swirl_x = cv2.resize(swirl[0], (grid_cells, grid_cells), interpolation=cv2.INTER_CUBIC)
        swirl_y = cv2.resize(swirl[1], (grid_cells, grid_cells), interpolation=cv2.INTER_CUBIC)
        pattern_x = envelope * (0.7 * radial_x / norm + 0.5 * swirl_x)
        pattern_y = envelope * (0.7 * radial_y / norm + 0.5 * swirl_y)
        peak = max(float(np.hypot(pattern_x, pattern_y).max()), 1e-6)
        self._cardiac_x = (pattern_x / peak).astype(np.float32)
        self._cardiac_y = (pattern_y / peak).astype(np.float32)
        # breathing moves the diaphragm region (bottom) more than the top of the frame
        self._resp_weight = (0.6 + 0.4 * grid_y / max(height - 1.0, 1.0)).astype(np.float32)
        base_x, base_y = np.meshgrid(
            np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
        )
        self._base_x = base_x + pad_px
        self._base_y = base_y + pad_px

    def components(self, t_s: float) -> dict[str, float]:
        """Scalar motion state at time ``t_s`` [s]: respiratory/cardiac phase factors and
        table shift [px]."""
        spec = self.spec
        resp = spec.respiratory_amplitude_px * np.sin(
            2 * np.pi * spec.respiratory_hz * t_s + spec.respiratory_phase_rad
        )
        phase = 2 * np.pi * spec.cardiac_hz * t_s
        # a fast systole and slower diastole: fundamental plus a second harmonic
        cardiac = spec.cardiac_amplitude_px * (0.8 * np.sin(phase) + 0.3 * np.sin(2 * phase)) / 1.05
        pan_x = pan_y = 0.0
        for start, duration, dx, dy in spec.pans:
            w = _smoothstep((t_s - start) / duration)
            pan_x += w * dx
            pan_y += w * dy
        return {
            "respiratory_px": float(resp),
            "cardiac_px": float(cardiac),
            "pan_x_px": pan_x,
            "pan_y_px": pan_y,
        }

    def _grid(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        c = self.components(t_s)
        dir_x = np.cos(self.spec.respiratory_direction_rad)
        dir_y = np.sin(self.spec.respiratory_direction_rad)
        gx = c["respiratory_px"] * dir_x * self._resp_weight + c["cardiac_px"] * self._cardiac_x
        gy = c["respiratory_px"] * dir_y * self._resp_weight + c["cardiac_px"] * self._cardiac_y
        # the table moves the patient: the canvas point seen at x is x - pan
        return (gx - c["pan_x_px"]).astype(np.float32), (gy - c["pan_y_px"]).astype(np.float32)

    def maps(self, t_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Remap tables ``(map_x, map_y)`` ``(H, W)`` float32 (canvas coordinates sampled
        by each frame pixel) and the displacement ``(dx, dy)`` ``(H, W)`` [px]."""
        gx, gy = self._grid(t_s)
        size = (self.width, self.height)
        dx = cv2.resize(gx, size, interpolation=cv2.INTER_LINEAR)
        dy = cv2.resize(gy, size, interpolation=cv2.INTER_LINEAR)
        return self._base_x + dx, self._base_y + dy, dx, dy

    def canvas_to_frame(
        self, points_canvas_px: np.ndarray, dx: np.ndarray, dy: np.ndarray, iterations: int = 3
    ) -> np.ndarray:
        """Map canvas points ``(N, 2)`` [px] to frame coordinates by fixed-point inversion
        of ``canvas = frame + pad + d(frame)`` (d smooth, so a few iterations reach
        sub-pixel accuracy), using the same full-resolution field as the image warp."""
        target = np.asarray(points_canvas_px, dtype=np.float64) - self.pad_px
        frame = target.copy()
        for _ in range(iterations):
            d = _bilinear(dx, dy, frame)
            frame = target - d
        return frame


def _bilinear(dx: np.ndarray, dy: np.ndarray, points_px: np.ndarray) -> np.ndarray:
    """Bilinear sample of two ``(H, W)`` fields at ``(N, 2)`` points (clamped to edges)."""
    height, width = dx.shape
    x = np.clip(points_px[:, 0], 0.0, width - 1.001)
    y = np.clip(points_px[:, 1], 0.0, height - 1.001)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    out = np.empty_like(points_px, dtype=np.float64)
    for k, f in enumerate((dx, dy)):
        top = f[y0, x0] * (1 - fx) + f[y0, x0 + 1] * fx
        bottom = f[y0 + 1, x0] * (1 - fx) + f[y0 + 1, x0 + 1] * fx
        out[:, k] = top * (1 - fy) + bottom * fy
    return out


class InsertionProfile:
    """Wire insertion depth ``L(t)`` [px along the track] of one wire, generated lazily.

    ``mode="manipulate"``: piecewise-constant velocity segments (advance, retract, pause,
    jiggle) of 0.3-2 s, reflected at ``[min_px, max_px]``. ``mode="excursion"``: the tip
    oscillates around ``exit_px`` (where the track leaves the field) so it leaves and
    re-enters the field: ``L(t) = exit_px - amplitude * cos(2 pi t / period)``.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        start_px: float,
        min_px: float,
        max_px: float,
        speed_px_per_s: float,
        fps: float,
        mode: str = "manipulate",
        exit_px: float = 0.0,
        amplitude_px: float = 0.0,
        period_s: float = 4.0,
    ) -> None:
        self._rng = rng
        self.min_px, self.max_px = float(min_px), float(max(max_px, min_px))
        self.speed = float(speed_px_per_s)
        self.dt = 1.0 / fps
        self.mode = mode
        self.exit_px, self.amplitude_px, self.period_s = exit_px, amplitude_px, period_s
        self._values = [float(np.clip(start_px, self.min_px, self.max_px))]
        self._velocity = 0.0
        self._jiggle = False
        self._segment_left = 0

    def _extend(self) -> None:
        if self._segment_left <= 0:
            choice = self._rng.choice(4, p=[0.4, 0.2, 0.25, 0.15])
            velocity = [1.0, -0.6, 0.0, 0.0][choice] * self.speed * self._rng.uniform(0.4, 1.2)
            self._jiggle = choice == 3
            self._velocity = velocity
            self._segment_left = max(1, int(self._rng.uniform(0.3, 2.0) / self.dt))
        v = self._velocity
        if self._jiggle:
            v = self.speed * 0.5 * (1 if (self._segment_left // 2) % 2 else -1)
        value = self._values[-1] + v * self.dt
        if value > self.max_px or value < self.min_px:
            self._velocity = -self._velocity
            value = float(np.clip(value, self.min_px, self.max_px))
        self._values.append(value)
        self._segment_left -= 1

    def at(self, frame_index: int) -> float:
        """Insertion depth at ``frame_index`` [px]."""
        if self.mode == "excursion":
            t = frame_index * self.dt
            return float(self.exit_px - self.amplitude_px * np.cos(2 * np.pi * t / self.period_s))
        while len(self._values) <= frame_index:
            self._extend()
        return self._values[frame_index]
