"""Geometry alone on adversarial probability maps: the cost bound without the network.

Each map kind is a ``(size, size)`` float32 probability map built to stress one part of
:mod:`fluoro_perception.core.geometry`, fed as the guidewire map to
:func:`~fluoro_perception.core.geometry.extract_wires` (no tip heatmap, no field) and as
the stent map to :func:`~fluoro_perception.core.geometry.extract_stents`, with the
shipped :class:`~fluoro_perception.core.geometry.GeometryConfig`:

``tiny_blobs``
    hundreds of 1-7 px discs (component counting, stents' contour loop);
``crossing_lines``
    dozens of 3 px lines crossing each other (one component, thousands of skeleton
    pixels and junctions);
``rings``
    closed 3 px circles of 5-80 px radius (skeleton loops without ends);
``huge_blob``
    one filled disc covering most of the frame (thinning passes);
``all_ones``
    probability 1 everywhere (a saturated output);
``noise``
    uniform noise (half the pixels above threshold, one percolating component);
``smooth_noise``
    blurred noise thresholded at 0.5 (blobs and branches of every width).

A fresh map is drawn for every repeat (seeded). The target is a geometry p99 of
:data:`TARGET_GEOMETRY_P99_MS` on any such map.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from fluoro_perception.bench.report import summarize_ms
from fluoro_perception.core.geometry import (
    GEOMETRY_CAPS,
    GeometryConfig,
    extract_stents,
    extract_wires,
    new_caps_hit,
)

#: Wanted upper bound of the geometry time per frame, p99 over the maps [ms].
TARGET_GEOMETRY_P99_MS = 8.0


def _tiny_blobs(rng: np.random.Generator, size: int) -> np.ndarray:
    prob = np.zeros((size, size), np.float32)
    for _ in range(max(1, size * size // 440)):  # ~600 at 512 px
        x, y = (int(v) for v in rng.integers(0, size, 2))
        cv2.circle(prob, (x, y), int(rng.integers(1, 4)), 1.0, -1)
    return prob


def _crossing_lines(rng: np.random.Generator, size: int) -> np.ndarray:
    prob = np.zeros((size, size), np.float32)
    for _ in range(40):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, size, 4))
        cv2.line(prob, (x0, y0), (x1, y1), 1.0, 3)
    return prob


def _rings(rng: np.random.Generator, size: int) -> np.ndarray:
    prob = np.zeros((size, size), np.float32)
    for _ in range(30):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        radius = int(rng.integers(5, max(6, size * 80 // 512)))
        cv2.circle(prob, (x, y), radius, 1.0, 3)
    return prob


def _huge_blob(rng: np.random.Generator, size: int) -> np.ndarray:
    prob = np.zeros((size, size), np.float32)
    centre = (int(rng.integers(size * 2 // 5, size * 3 // 5)),) * 2
    cv2.circle(prob, centre, size * 2 // 5, 1.0, -1)
    return prob


def _all_ones(rng: np.random.Generator, size: int) -> np.ndarray:
    return np.ones((size, size), np.float32)


def _noise(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.random((size, size), dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    blurred = cv2.GaussianBlur(rng.random((size, size), dtype=np.float32), (0, 0), 2.0)
    return (blurred > 0.5).astype(np.float32)


#: Map kind -> generator ``(rng, size) -> (size, size) float32``.
MAP_KINDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "tiny_blobs": _tiny_blobs,
    "crossing_lines": _crossing_lines,
    "rings": _rings,
    "huge_blob": _huge_blob,
    "all_ones": _all_ones,
    "noise": _noise,
    "smooth_noise": _smooth_noise,
}


def adversarial_map(kind: str, size: int = 512, seed: int = 0) -> np.ndarray:
    """One ``(size, size)`` float32 map of ``kind`` (a :data:`MAP_KINDS` key)."""
    if kind not in MAP_KINDS:
        raise ValueError(f"map kind {kind!r}; expected one of {sorted(MAP_KINDS)}")
    return MAP_KINDS[kind](np.random.default_rng(seed), size)


def bench_geometry_maps(
    *, size: int = 512, repeats: int = 20, seed: int = 0, config: GeometryConfig | None = None
) -> dict:
    """Time wires + stents geometry on every adversarial map kind.

    Parameters
    ----------
    size : int
        Map height and width [px].
    repeats : int
        Maps per kind (each drawn with its own seed); each is timed once after one
        untimed call on the first map of the kind.
    seed : int
        Base seed of the maps.
    config : GeometryConfig, optional
        Geometry settings (default: the shipped ones).

    Returns
    -------
    dict
        ``size_px``, ``repeats``, ``kinds`` (kind -> ``geometry_ms`` summary of the wall
        time of wires + stents, ``cpu_ms`` summary of this thread's CPU time, mean
        ``wires`` and ``stents`` found, ``caps_hit`` summed over its maps), ``all``
        (``geometry_ms`` and ``cpu_ms`` over every map), ``target_p99_ms``, ``passed``
        (wall p99 over every map within the target), ``caps_hit`` (summed over all).
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r}; expected an int >= 1")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size={size!r}; expected an int >= 16 [px]")
    config = config or GeometryConfig()
    kinds: dict[str, dict] = {}
    all_wall: list[float] = []
    all_cpu: list[float] = []
    total_caps = new_caps_hit()
    for kind_index, kind in enumerate(MAP_KINDS):
        maps = [adversarial_map(kind, size, seed + 1000 * kind_index + r) for r in range(repeats)]
        extract_wires(maps[0], None, config)  # warm-up (caches, lazy imports)
        extract_stents(maps[0], config)
        wall: list[float] = []
        cpu: list[float] = []
        wires = stents = 0
        caps = new_caps_hit()
        for prob in maps:
            wall_start, cpu_start = time.perf_counter(), time.thread_time()
            found_wires = extract_wires(prob, None, config, caps_hit=caps)
            found_stents = extract_stents(prob, config, caps_hit=caps)
            wall.append((time.perf_counter() - wall_start) * 1e3)
            cpu.append((time.thread_time() - cpu_start) * 1e3)
            wires += len(found_wires)
            stents += len(found_stents)
        kinds[kind] = {
            "geometry_ms": summarize_ms(wall),
            "cpu_ms": summarize_ms(cpu),
            "wires": wires / repeats,
            "stents": stents / repeats,
            "caps_hit": caps,
        }
        all_wall += wall
        all_cpu += cpu
        for name in GEOMETRY_CAPS:
            total_caps[name] += caps[name]
    overall = summarize_ms(all_wall)
    return {
        "size_px": size,
        "repeats": repeats,
        "kinds": kinds,
        "all": {"geometry_ms": overall, "cpu_ms": summarize_ms(all_cpu)},
        "target_p99_ms": TARGET_GEOMETRY_P99_MS,
        "passed": overall["p99"] <= TARGET_GEOMETRY_P99_MS,
        "caps_hit": total_caps,
        "skipped": None,
    }
