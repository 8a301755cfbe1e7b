"""Model-only latency: ONNX Runtime per execution provider, batch 1.

For each provider the model is loaded three ways, because the optimized-model cache of
:class:`~fluoro_perception.core.engine.InferenceEngine` changes the start-up time (and,
should the saved graph differ, the run time):

``off``
    ``use_optimized_cache=False``: ORT optimizes the graph at every load;
``cold``
    cache on, empty cache folder: optimize once and save the optimized graph;
``warm``
    cache on, the file saved by ``cold`` exists: load it with optimizations off.

With TensorRT the engine's own cache (``trt_cache_dir``) plays that role: ``cold``
builds the TensorRT engine, ``warm`` loads it. Each row times ``runs`` inferences on a
fixed random input after ``warmup`` untimed ones.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from fluoro_perception.bench.report import summarize_ms
from fluoro_perception.core.engine import CPU, InferenceEngine, ModelLoadError

CACHE_MODES: tuple[str, ...] = ("off", "cold", "warm")


def _check_counts(runs: int, warmup: int) -> None:
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs={runs!r}; expected an int >= 1 (timed inferences)")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup={warmup!r}; expected an int >= 0 (untimed inferences)")


def time_engine(engine: InferenceEngine, runs: int, warmup: int, seed: int = 0) -> list[float]:
    """Latencies [ms] of ``runs`` calls of ``engine.run`` on one ``(1, 1, h, w)`` random input.

    ``warmup`` untimed calls come first (allocator and thread-pool start-up).
    """
    _check_counts(runs, warmup)
    height, width = engine.input_shape
    net_input = np.random.default_rng(seed).standard_normal((1, 1, height, width), dtype=np.float32)
    for _ in range(warmup):
        engine.run(net_input)
    samples_ms = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.run(net_input)
        samples_ms.append((time.perf_counter() - start) * 1e3)
    return samples_ms


def measure_provider(
    model_path: str | Path,
    provider: str,
    *,
    runs: int = 50,
    warmup: int = 5,
    intra_op_threads: int = 0,
    fp16: bool = False,
    cache_modes: Sequence[str] = CACHE_MODES,
    cache_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Latency rows of one execution provider, one per optimized-cache mode.

    Parameters
    ----------
    model_path : str or Path
        Exported ONNX model with metadata.
    provider : str
        ONNX Runtime provider name (e.g. ``"CPUExecutionProvider"``). A provider that is
        not available here gives one row with ``skipped`` set.
    runs, warmup : int
        Timed and untimed inferences per row.
    intra_op_threads : int
        ORT intra-op threads (0 = ORT default).
    fp16 : bool
        TensorRT fp16 kernels (TensorRT only).
    cache_modes : sequence of str
        Subset of :data:`CACHE_MODES`, measured in the given order; ``warm`` needs a
        ``cold`` row before it (or an already filled ``cache_dir``).
    cache_dir : str, Path or None
        Optimized-model cache folder; None = a temporary folder removed afterwards, so
        ``cold`` really starts cold.

    Returns
    -------
    list of dict
        ``provider``, ``optimized_cache``, ``active_provider``, ``load_ms`` (engine
        construction without warm-up runs [ms]), ``runs``, ``warmup``, ``latency_ms``
        (:func:`~fluoro_perception.bench.report.summarize_ms`), ``throughput_fps``
        (1000 / median), ``skipped`` (None or the reason).
    """
    _check_counts(runs, warmup)
    unknown_modes = [mode for mode in cache_modes if mode not in CACHE_MODES]
    if unknown_modes:
        raise ValueError(f"cache_modes {unknown_modes}; expected a subset of {CACHE_MODES}")
    if provider not in ort.get_available_providers():
        return [
            {
                "provider": provider,
                "optimized_cache": "-",
                "skipped": f"{provider} not available here (available: "
                f"{', '.join(ort.get_available_providers())})",
            }
        ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fluoro_bench_cache_") as temporary:
        root = Path(cache_dir) if cache_dir is not None else Path(temporary)
        for mode in cache_modes:
            start = time.perf_counter()
            try:
                # a GPU row must not silently measure the CPU: no fallback unless CPU was asked
                engine = InferenceEngine(
                    model_path,
                    providers=[provider],
                    fp16=fp16,
                    allow_cpu_fallback=provider == CPU,
                    intra_op_threads=intra_op_threads,
                    warmup_runs=0,
                    cache_dir=root / ("off" if mode == "off" else "cached"),
                    trt_cache_dir=root / ("trt_off" if mode == "off" else "trt_cached"),
                    use_optimized_cache=mode != "off",
                )
            except ModelLoadError as exc:
                # e.g. CUDA listed by ORT but its libraries missing: report, do not abort
                rows.append({"provider": provider, "optimized_cache": mode, "skipped": str(exc)})
                continue
            load_ms = (time.perf_counter() - start) * 1e3
            try:
                samples_ms = time_engine(engine, runs, warmup)
            finally:
                active = engine.active_provider
                engine.close()
            latency = summarize_ms(samples_ms)
            rows.append(
                {
                    "provider": provider,
                    "optimized_cache": mode,
                    "intra_op_threads": intra_op_threads,
                    "active_provider": active,
                    "load_ms": load_ms,
                    "runs": runs,
                    "warmup": warmup,
                    "latency_ms": latency,
                    "throughput_fps": 1e3 / latency["median"],
                    "skipped": None,
                }
            )
    return rows


def bench_model_latency(
    model_path: str | Path,
    providers: Sequence[str],
    *,
    runs: int = 50,
    warmup: int = 5,
    intra_op_threads: int = 0,
    fp16: bool = False,
    cache_modes: Sequence[str] = CACHE_MODES,
    cpu_thread_sweep: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """:func:`measure_provider` for every provider in ``providers`` (rows concatenated).

    ``cpu_thread_sweep`` adds CPU rows (warm cache) at each of these intra-op thread
    counts, so the effect of the thread count is measured in the same run (on a busy
    machine one thread can beat two: the second one waits to be scheduled).
    """
    if isinstance(providers, str) or not providers:
        raise ValueError(
            f"providers={providers!r}; expected a non-empty list such as ['CPUExecutionProvider']"
        )
    rows: list[dict[str, Any]] = []
    for provider in providers:
        rows += measure_provider(
            model_path,
            provider,
            runs=runs,
            warmup=warmup,
            intra_op_threads=intra_op_threads,
            fp16=fp16,
            cache_modes=cache_modes,
        )
    if cpu_thread_sweep and CPU in ort.get_available_providers():
        with tempfile.TemporaryDirectory(prefix="fluoro_bench_sweep_") as cache_dir:
            for index, threads in enumerate(cpu_thread_sweep):
                modes = ("cold", "warm") if index == 0 else ("warm",)
                sweep = measure_provider(
                    model_path, CPU, runs=runs, warmup=warmup, intra_op_threads=int(threads),
                    cache_modes=modes, cache_dir=cache_dir,
                )  # fmt: skip
                rows.append(sweep[-1])
    return rows
