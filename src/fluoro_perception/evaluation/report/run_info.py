"""Header of an evaluation run: model, provider, machine, date and dataset."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    """The machine the evaluation ran on (platform, CPU, Python, ONNX Runtime)."""
    import onnxruntime as ort

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "onnxruntime": ort.__version__,
        "available_providers": list(ort.get_available_providers()),
    }


def utc_now_iso() -> str:
    """Current UTC time, ISO 8601 to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class RunInfo:
    """What was evaluated, how and where (the header of the report).

    Attributes
    ----------
    model_path : str
        ONNX file.
    model_sha256 : str
        Hex digest of the file.
    architecture, model_version : str
        From the model's metadata.
    provider : str
        ONNX Runtime execution provider that ran the graph.
    dataset_path : str
        Dataset folder.
    dataset_frames : int
        Frames in the dataset.
    max_frames : int or None
        ``--max-frames`` limit, None for all.
    date_utc : str
        ISO 8601 start time.
    machine : dict
        :func:`machine_info`.
    """

    model_path: str
    model_sha256: str
    architecture: str
    model_version: str
    provider: str
    dataset_path: str
    dataset_frames: int
    max_frames: int | None = None
    date_utc: str = field(default_factory=utc_now_iso)
    machine: dict = field(default_factory=machine_info)

    @classmethod
    def for_engine(cls, engine: Any, **dataset: Any) -> RunInfo:
        """Header of a run on ``engine`` (an :class:`~fluoro_perception.core.engine.
        InferenceEngine`); ``dataset``: ``dataset_path``, ``dataset_frames`` and optional
        ``max_frames``."""
        return cls(
            model_path=str(engine.model_path),
            model_sha256=engine.model_sha256,
            architecture=engine.metadata.architecture,
            model_version=engine.metadata.version,
            provider=engine.active_provider,
            **dataset,
        )

    @classmethod
    def for_model_file(cls, model_path: str | Path, provider: str, **dataset: Any) -> RunInfo:
        """Header of a run that another process's engine ran (live replay, demo): model
        metadata and sha256 read from the file, without an ONNX Runtime session."""
        from fluoro_perception.core.engine import file_sha256, read_model_metadata

        metadata = read_model_metadata(model_path)
        return cls(
            model_path=str(Path(model_path)),
            model_sha256=file_sha256(model_path),
            architecture=metadata.architecture,
            model_version=metadata.version,
            provider=provider,
            **dataset,
        )
