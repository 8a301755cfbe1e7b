"""Torch eager baselines at the same input size: what the pipeline is compared against.

Rows (batch 1, ``(1, 1, size, size)`` float32 input, ``torch.inference_mode``, fixed
thread count):

``monai_attention_unet``
    ``monai.networks.nets.AttentionUnet`` (2-D, channels 16-32-64-128-256, strides 2,
    about 2 M parameters), the Attention U-Net row of the seeds' comparison tables
    (seed ``000_a7406d7b89063154.txt`` Table 2, seed ``001_d0d03ac8067c31fe.txt`` Sec. 4);
``monai_basic_unet``
    ``monai.networks.nets.BasicUNet`` with MONAI's default features (about 2 M parameters);
``default_model``
    our default architecture (``config/train/default.yaml``) in torch eager, so the gain of
    ONNX Runtime over eager is visible on its own.

All three output 4 channels (3 classes + tip heatmap) like the exported models. torch,
MONAI and ``fluoro_training`` are imported here lazily: the runtime never needs them,
and a missing package skips its rows with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fluoro_perception.bench.report import summarize_ms

#: AttentionUnet channels per level (MONAI example size, ~2 M parameters).
ATTENTION_UNET_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256)
#: Output channels of every baseline: background, guidewire, stent + tip heatmap.
OUTPUT_CHANNELS = 4


def default_train_config_path() -> Path | None:
    """``config/train/default.yaml`` of the source tree or an installed share folder."""
    from fluoro_perception.nodes.graph import share_dirs

    for directory in share_dirs():
        candidate = directory / "config" / "train" / "default.yaml"
        if candidate.is_file():
            return candidate
    return None


def build_default_model(config_path: Path | None = None) -> tuple[Any, Any]:
    """Our default architecture (random weights, eval mode) and its training config.

    Raises
    ------
    FileNotFoundError
        No ``config/train/default.yaml`` found.
    ImportError
        torch or ``fluoro_training`` missing.
    """
    from fluoro_training.config import load_config
    from fluoro_training.models import create_model

    config_path = config_path or default_train_config_path()
    if config_path is None:
        raise FileNotFoundError(
            "config/train/default.yaml not found in the source tree or share folders; pass "
            "--model FILE.onnx"
        )
    config = load_config(config_path)
    model = create_model(
        config.model.name,
        num_classes=config.model.num_classes,
        tip_head=config.model.tip_head,
        **config.model.kwargs,
    )
    return model.eval(), config


def _model_builders() -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (description, builder); builders import lazily."""

    def attention_unet() -> Any:
        from monai.networks.nets import AttentionUnet

        return AttentionUnet(
            spatial_dims=2,
            in_channels=1,
            out_channels=OUTPUT_CHANNELS,
            channels=ATTENTION_UNET_CHANNELS,
            strides=(2, 2, 2, 2),
        )

    def basic_unet() -> Any:
        from monai.networks.nets import BasicUNet

        return BasicUNet(spatial_dims=2, in_channels=1, out_channels=OUTPUT_CHANNELS)

    def default_model() -> Any:
        model, _config = build_default_model()
        return model

    return {
        "monai_attention_unet": ("MONAI AttentionUnet 16-256", attention_unet),
        "monai_basic_unet": ("MONAI BasicUNet default features", basic_unet),
        "default_model": ("our default model (config/train/default.yaml)", default_model),
    }


BASELINE_NAMES: tuple[str, ...] = ("monai_attention_unet", "monai_basic_unet", "default_model")


def bench_torch_baselines(
    *,
    size: int = 512,
    runs: int = 20,
    warmup: int = 3,
    threads: Sequence[int] | None = None,
    names: tuple[str, ...] = BASELINE_NAMES,
    seed: int = 0,
) -> dict[str, Any]:
    """Eager torch latency of the baseline networks.

    Parameters
    ----------
    size : int
        Input height and width [px]; a multiple of 32 fits every row.
    runs, warmup : int
        Timed and untimed forward passes per model.
    threads : sequence of int or None
        ``torch.set_num_threads`` (intra-op) values; every model is timed at each, fixed
        for its rows. None = ``(1, logical CPUs)``: on a busy machine several torch
        threads can be far slower than one (OpenMP barriers wait for descheduled
        threads), so the fastest row is the fair baseline. Restored afterwards.
    names : tuple of str
        Subset of :data:`BASELINE_NAMES`.
    seed : int
        Seed of the weights and the input.

    Returns
    -------
    dict
        ``skipped`` (None, or why nothing ran: torch missing), ``torch_version``,
        ``threads`` (the list), ``interop_threads``, ``size_px``, ``rows``: one per model and
        thread count with ``name``, ``threads``, ``description``, ``parameters``, ``latency_ms`` summary,
        ``throughput_fps`` (1000 / median) and ``skipped`` (None or the reason).
    """
    unknown = [name for name in names if name not in BASELINE_NAMES]
    if unknown:
        raise ValueError(f"baselines {unknown}; expected names from {BASELINE_NAMES}")
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1 or warmup < 0:
        raise ValueError(f"runs={runs!r}, warmup={warmup!r}; expected runs >= 1, warmup >= 0")
    if size % 32:
        raise ValueError(f"size={size} px; expected a multiple of 32 (U-Nets down-sample 5 times)")
    try:
        import torch
    except ImportError as exc:
        return {
            "skipped": f"torch not installed ({exc}); install requirements/train.txt",
            "rows": [],
        }
    if threads is None:
        threads = sorted({1, os.cpu_count() or 1})
    threads = [int(t) for t in threads]
    if not threads or min(threads) < 1:
        raise ValueError(f"threads={threads}; expected thread counts >= 1")
    previous_threads = torch.get_num_threads()
    builders = _model_builders()
    rows = []
    try:
        for name in names:
            description, build = builders[name]
            try:
                torch.manual_seed(seed)
                model = build().eval()
            except (ImportError, FileNotFoundError) as exc:
                rows.append({"name": name, "description": description, "skipped": str(exc)})
                continue
            generator = torch.Generator().manual_seed(seed)
            image = torch.randn(1, 1, size, size, generator=generator)  # (1, 1, H, W)
            for thread_count in threads:
                torch.set_num_threads(thread_count)
                samples_ms = []
                with torch.inference_mode():
                    for _ in range(warmup):
                        model(image)
                    for _ in range(runs):
                        start = time.perf_counter()
                        model(image)
                        samples_ms.append((time.perf_counter() - start) * 1e3)
                latency = summarize_ms(samples_ms)
                rows.append(
                    {
                        "name": name,
                        "threads": thread_count,
                        "description": description,
                        "parameters": int(sum(p.numel() for p in model.parameters())),
                        "latency_ms": latency,
                        "throughput_fps": 1e3 / latency["median"],
                        "skipped": None,
                    }
                )
    finally:
        torch.set_num_threads(previous_threads)
    return {
        "skipped": None,
        "torch_version": torch.__version__,
        "threads": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "size_px": size,
        "runs": runs,
        "warmup": warmup,
        "rows": rows,
    }
