"""X-ray image formation: attenuation line integrals -> detector counts -> display image.

Model, per pixel (all float32):

1. ``A`` = sum of ``mu * thickness`` of every structure along the ray (dimensionless);
   ``A_ref`` is the 85th percentile of ``A`` in the field at the first frame.
2. Beer-Lambert primary: ``P = N0 * g(x) * exp(-(A - A_ref))`` with ``N0`` the dose
   (detected photons per pixel behind median tissue) and ``g`` the field gain
   (vignetting band at the field border, heel-effect gradient, collimator leakage,
   optional semi-transparent wedge filter).
3. Scatter: a constant ``S = s * mean(P)`` that lowers contrast (scatter fraction s).
4. Noise: quantum noise ``Poisson(P + S)`` plus electronic noise ``N(0, sigma_e^2)``.
   The Poisson draw is replaced by its Gaussian limit ``mean + sqrt(mean) * N(0, 1)``
   (exact enough above ~20 counts, which all doses here are, and ~4x faster than
   ``Generator.poisson`` on a 512 x 512 frame); one normal draw carries both variances.
5. Detector blur: Gaussian PSF (scintillator light spread) applied after the noise, so
   the noise is spatially correlated like on a real flat panel.
6. Display processing: ``log``, motion-adaptive recursive temporal filter, unsharp-mask
   edge enhancement, window/level from the field's percentiles (slowly adapting, as an
   auto-window does), gamma, quantization to 8, 12 or 16 bit. Attenuating objects come
   out DARK on a lighter background, as on a C-arm monitor.

Targets (``/work/shared/docs/real-fluoroscopy.md``): 1st-99th percentile about 45-200 of
255, mean about 100-120, high-pass residual std about 1.5-4 grey levels for processed
exports and higher for raw low-dose frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

#: Output maximum per supported bit depth.
BIT_DEPTH_MAX = {8: 255, 12: 4095, 16: 65535}


@dataclass(frozen=True)
class ImagingSpec:
    """Per-sequence acquisition and display parameters (ranges in ``SimConfig``).

    Attributes
    ----------
    dose_photons : float
        Detected photons per pixel behind dense tissue (85th percentile of the field's
        attenuation at the first frame); sets the quantum noise level.
    electronic_noise_photons : float
        Electronic noise std in photon units.
    scatter_fraction : float
        Scatter-to-primary ratio (0-1), lowers contrast.
    psf_sigma_px : float
        Detector blur std [px].
    temporal_filter : float
        Weight of the previous frame in the recursive filter (0 = off).
    edge_enhance : float
        Unsharp-mask gain (0 = off).
    edge_sigma_px : float
        Unsharp-mask blur std [px].
    gamma : float
        Display gamma (>1 darkens mid-tones) when ``target_mean`` is 0; otherwise the
        gamma is solved at the first frame (auto-brightness) and clipped to
        ``gamma_bounds``.
    target_mean : float
        Mean display value inside the field the auto-brightness aims at (0-1 of full
        scale; 0 disables it).
    gamma_bounds : tuple[float, float]
        Allowed range of the solved gamma.
    black_level, white_level : float
        Display values (0-1 of full scale) the window maps to.
    window_low_pct, window_high_pct : float
        Field percentiles of the log image used as window edges [%].
    vignette_depth : float
        Relative intensity loss at the field border (0-1).
    vignette_width_px : float
        Width of the dark band along the field border [px].
    heel_gradient : float
        Relative intensity change across the frame (anode heel effect).
    heel_angle_rad : float
        Direction of the heel gradient [rad].
    outside_level : float
        Display value outside the field (0-1 of full scale, near black).
    raw : bool
        True for a raw low-dose look (no temporal filter or edge enhancement).
    wedge_attenuation : float
        Extra line integral of a semi-transparent wedge (compensation) filter covering
        part of the field (0 = none); cardiac systems slide these over bright lung.
    wedge_angle_rad : float
        Direction [rad] from the frame centre towards the covered side.
    wedge_offset : float
        Signed distance of the wedge edge from the frame centre along that direction, as
        a fraction of ``max(H, W)``.
    wedge_softness_px : float
        Width of the wedge's soft edge [px] (it sits far from the focal spot's image
        plane, so its edge is blurred).
    """

    dose_photons: float
    electronic_noise_photons: float
    scatter_fraction: float
    psf_sigma_px: float
    temporal_filter: float
    edge_enhance: float
    edge_sigma_px: float
    gamma: float
    black_level: float
    white_level: float
    window_low_pct: float
    window_high_pct: float
    vignette_depth: float
    vignette_width_px: float
    heel_gradient: float
    heel_angle_rad: float
    outside_level: float
    raw: bool
    target_mean: float = 0.0
    gamma_bounds: tuple[float, float] = (0.5, 2.0)
    wedge_attenuation: float = 0.0
    wedge_angle_rad: float = 0.0
    wedge_offset: float = 0.0
    wedge_softness_px: float = 20.0

    def as_dict(self) -> dict:
        """Plain-Python copy for ``SimFrame.params``."""
        out = {}
        for key, value in asdict(self).items():
            if isinstance(value, bool):
                out[key] = value
            elif isinstance(value, tuple):
                out[key] = [float(v) for v in value]
            else:
                out[key] = float(value)
        return out


def make_field_mask(
    rng: np.random.Generator, height: int, width: int, kind: str, min_fraction: float = 0.25
) -> np.ndarray:
    """Exposed-field mask ``(H, W)`` bool.

    Parameters
    ----------
    kind : str
        ``"full"`` (whole frame), ``"shutters"`` (1-4 straight collimator blades, possibly
        slightly tilted) or ``"circle"`` (circular field, possibly clipped by the frame).
    min_fraction : float
        Minimum fraction of the frame the field covers (0-1); smaller = less effective
        content, as in FGA-Net's clinical data (seed 002, "Cropping").
    """
    if kind == "full":
        return np.ones((height, width), dtype=bool)
    for _ in range(20):
        canvas = np.zeros((height, width), dtype=np.uint8)
        if kind == "circle":
            radius = rng.uniform(0.35, 0.75) * max(height, width)
            centre = (width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6))
            cv2.circle(
                canvas,
                (int(centre[0] * 16), int(centre[1] * 16)),
                int(radius * 16),
                1,
                -1,
                cv2.LINE_8,
                4,
            )
        elif kind == "shutters":
            canvas[:] = 1
            yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
            n_blades = int(rng.integers(1, 5))
            for side in rng.permutation(4)[:n_blades]:
                depth = rng.uniform(0.05, 0.35)
                tilt = rng.normal(0.0, 0.05)
                if side == 0:  # left
                    keep = xx - depth * width - tilt * (yy - height / 2) >= 0
                elif side == 1:  # right
                    keep = (width - 1 - xx) - depth * width - tilt * (yy - height / 2) >= 0
                elif side == 2:  # top
                    keep = yy - depth * height - tilt * (xx - width / 2) >= 0
                else:  # bottom
                    keep = (height - 1 - yy) - depth * height - tilt * (xx - width / 2) >= 0
                canvas &= keep.astype(np.uint8)
        else:
            raise ValueError(
                f"field kind {kind!r} is not known; expected one of 'full', 'shutters', 'circle'"
            )
        if canvas.mean() >= min_fraction:
            return canvas.astype(bool)
    return np.ones((height, width), dtype=bool)


def field_gain(field_mask: np.ndarray, spec: ImagingSpec) -> np.ndarray:
    """Intensity gain ``(H, W)`` float32: vignetting band inside the field border, heel
    gradient, and a penumbra-blurred collimator edge with a small leakage outside."""
    height, width = field_mask.shape
    padded = np.pad(field_mask.astype(np.uint8), 1, constant_values=0)
    # the frame edge counts as field border too (image intensifier / detector edge)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    vignette = 1.0 - spec.vignette_depth * np.exp(
        -distance / max(spec.vignette_width_px / 2.5, 0.5)
    )
    gy, gx = np.mgrid[0:height, 0:width].astype(np.float32)
    heel = 1.0 + spec.heel_gradient * (
        np.cos(spec.heel_angle_rad) * (gx / width - 0.5)
        + np.sin(spec.heel_angle_rad) * (gy / height - 0.5)
    )
    inside = cv2.GaussianBlur(field_mask.astype(np.float32), (0, 0), 1.0)
    gain = vignette * heel * (0.004 + 0.996 * inside)
    if spec.wedge_attenuation > 0:
        # Beer-Lambert through the wedge: exp(-w) on the covered side, smooth edge
        along = np.cos(spec.wedge_angle_rad) * (gx - width / 2) + np.sin(spec.wedge_angle_rad) * (
            gy - height / 2
        )
        edge = spec.wedge_offset * max(height, width)
        covered = np.clip((along - edge) / max(spec.wedge_softness_px, 1.0) + 0.5, 0.0, 1.0)
        gain = gain * np.exp(-spec.wedge_attenuation * covered)
    return gain.astype(np.float32)


class ImageFormation:
    """Stateful detector + display chain of one sequence (keeps the temporal filter and
    auto-window state between consecutive frames).

    Parameters
    ----------
    spec : ImagingSpec
        Acquisition and display parameters.
    field_mask : np.ndarray
        ``(H, W)`` bool exposed field.
    bit_depth : int
        8, 12 or 16.
    """

    def __init__(self, spec: ImagingSpec, field_mask: np.ndarray, bit_depth: int) -> None:
        if bit_depth not in BIT_DEPTH_MAX:
            raise ValueError(
                f"bit_depth={bit_depth!r} is not supported; use one of {sorted(BIT_DEPTH_MAX)}"
            )
        self.spec = spec
        self.bit_depth = bit_depth
        self.field_mask = field_mask
        self._gain = field_gain(field_mask, spec)
        self._field_index = np.flatnonzero(field_mask.ravel())
        # a fixed subsample of field pixels for the auto-window percentiles (cheap)
        step = max(1, len(self._field_index) // 20000)
        self._window_index = self._field_index[::step]
        self._reference_attenuation: float | None = None
        self._scatter: float | None = None
        self._previous: np.ndarray | None = None
        self._window: tuple[float, float] | None = None
        self._gamma = float(spec.gamma)

    def render(self, attenuation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Turn a ``(H, W)`` float32 line-integral map into the display image.

        Returns
        -------
        np.ndarray
            ``(H, W)`` uint8 (8 bit) or uint16 (12/16 bit).
        """
        spec = self.spec
        if self._reference_attenuation is None:
            # dose is specified behind dense tissue (85th percentile of A), as automatic
            # exposure control sets it so the region of interest is not photon-starved
            self._reference_attenuation = float(
                np.percentile(attenuation.ravel()[self._window_index], 85)
            )
        exponent = np.float32(self._reference_attenuation) - attenuation
        np.clip(exponent, -8.0, 8.0, out=exponent)
        primary = cv2.exp(exponent)
        primary *= self._gain * np.float32(spec.dose_photons)
        if self._scatter is None:
            self._scatter = float(
                spec.scatter_fraction * primary.ravel()[self._window_index].mean()
            )
        counts = primary + np.float32(self._scatter)
        # Gaussian limit of Poisson(counts) plus electronic noise (see module docstring)
        sigma = cv2.sqrt(counts + np.float32(spec.electronic_noise_photons**2))
        noise = rng.standard_normal(counts.shape, dtype=np.float32)
        counts += sigma * noise
        if spec.psf_sigma_px > 0.2:
            counts = cv2.GaussianBlur(counts, (0, 0), spec.psf_sigma_px)
        np.maximum(counts, 0.5, out=counts)
        log_image = cv2.log(counts)
        if spec.temporal_filter > 0:
            if self._previous is not None:
                # motion-adaptive recursion: less weight where the frame changed a lot,
                # as clinical recursive filters do to avoid ghosting of moving wires
                change = np.abs(log_image - self._previous)
                weight = np.float32(spec.temporal_filter) * cv2.exp(-(change * np.float32(8.0)))
                log_image = log_image + weight * (self._previous - log_image)
            self._previous = log_image
        if spec.edge_enhance > 0:
            smooth = cv2.GaussianBlur(log_image, (0, 0), spec.edge_sigma_px)
            log_image = log_image + np.float32(spec.edge_enhance) * (log_image - smooth)
        samples = log_image.ravel()[self._window_index]
        low, high = np.percentile(samples, [spec.window_low_pct, spec.window_high_pct])
        if self._window is None:
            self._window = (float(low), float(high))
            if spec.target_mean > 0:
                self._gamma = self._solve_gamma(samples, float(low), float(high))
        else:  # auto-window adapts slowly (table pans, contrast runs)
            self._window = (
                0.9 * self._window[0] + 0.1 * float(low),
                0.9 * self._window[1] + 0.1 * float(high),
            )
        low, high = self._window
        span = max(high - low, 1e-3)
        display = (log_image - np.float32(low)) * np.float32(1.0 / span)
        np.clip(display, 0.0, 1.0, out=display)
        if abs(self._gamma - 1.0) > 1e-3:
            cv2.pow(display, self._gamma, dst=display)
        display = (
            np.float32(spec.black_level) + np.float32(spec.white_level - spec.black_level) * display
        )
        display[~self.field_mask] = np.float32(spec.outside_level)
        full_scale = BIT_DEPTH_MAX[self.bit_depth]
        scaled = display * np.float32(full_scale) + np.float32(0.5)
        np.clip(scaled, 0, full_scale, out=scaled)
        return scaled.astype(np.uint8 if self.bit_depth == 8 else np.uint16)

    @property
    def gamma(self) -> float:
        """Display gamma in use (solved by the auto-brightness at the first frame)."""
        return self._gamma

    def _solve_gamma(self, samples: np.ndarray, low: float, high: float) -> float:
        """Gamma that brings the field's mean display value to ``target_mean``
        (bisection on the subsampled pixels; the mean falls monotonically with gamma)."""
        spec = self.spec
        normalized = np.clip((samples - low) / max(high - low, 1e-3), 1e-6, 1.0)
        wanted = (spec.target_mean - spec.black_level) / max(
            spec.white_level - spec.black_level, 1e-3
        )
        wanted = float(np.clip(wanted, 0.02, 0.98))
        lo, hi = np.log(spec.gamma_bounds[0]), np.log(spec.gamma_bounds[1])
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            if float(np.mean(normalized ** np.exp(mid))) > wanted:
                lo = mid
            else:
                hi = mid
        return float(np.exp(0.5 * (lo + hi)))


def image_statistics(image: np.ndarray, field_mask: np.ndarray, bit_depth: int) -> dict:
    """Appearance statistics on the 0-255 scale inside the field, to compare with
    ``real-fluoroscopy.md``: 1st/99th percentile, mean, and the std of the high-pass
    residual (image minus a Gaussian blur of sigma 2) [grey levels]."""
    scaled = image.astype(np.float32) * np.float32(255.0 / BIT_DEPTH_MAX[bit_depth])
    inner = cv2.erode(field_mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    if not inner.any():
        inner = field_mask
    residual = scaled - cv2.GaussianBlur(scaled, (0, 0), 2.0)
    values = scaled[inner]
    p1, p99 = np.percentile(values, [1, 99])
    return {
        "p1": float(p1),
        "p99": float(p99),
        "mean": float(values.mean()),
        "highpass_std": float(residual[inner].std()),
    }
