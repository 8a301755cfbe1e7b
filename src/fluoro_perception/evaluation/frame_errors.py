"""``errors.jsonl``: per-frame error records, so that one bad frame never ends a job.

``fluoro-perception infer``, ``evaluate`` and ``demo`` go on past a frame they cannot
read, process, score or write: the frame gets one record here (schema in
``docs/results_format.md``), is counted in the command's summary, and the command exits
with :data:`EXIT_FRAMES_FAILED` instead of 0.

One JSON object per line with EXACTLY these keys:

``frame`` : str or null
    The frame's name as the command's output names it (``results.jsonl`` frame names for
    ``infer``, ``<sequence_id>/<frame_index:06d>`` for ``evaluate``); null when the
    failed items have no name (the unread end of a damaged bag, frames a video lacks).
``stage`` : str
    Where it failed, one of :data:`STAGES`.
``reason`` : str
    One line: what went wrong (exception type and message).
``count`` : int >= 1
    Frames the record stands for: 1 for a named frame, more for an unnamed group.
"""

from __future__ import annotations

import inspect
import re
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fluoro_perception.evaluation.results_io import JsonlWriter, ResultsFormatError, iter_jsonl

ERRORS_FILE = "errors.jsonl"
ERROR_KEYS: tuple[str, ...] = ("frame", "stage", "reason", "count")
#: Stages a frame can fail at, in processing order.
STAGES: tuple[str, ...] = (
    "read",  # the file / bag message / dataset entry could not be read
    "decode",  # read, but not an image the pipeline takes (corrupt, empty, odd type)
    "preprocess",  # grey conversion, field detection, letterbox
    "inference",  # the network (or the evaluate --oracle engine) and its outputs
    "geometry",  # wires and stents from the probability maps
    "tracking",  # tip tracking
    "masks",  # label map and masks at the input resolution
    "pipeline",  # elsewhere in the pipeline
    "metrics",  # scoring against the ground truth (evaluate, demo)
    "validate",  # the frame's results record breaks the results.jsonl schema
    "write",  # writing its masks or its results line
)
#: Exit code of a command that finished but left some frames out (in ``errors.jsonl``);
#: 0 = every frame ok, 2 = usage or fatal error (see ``fluoro_perception.cli.main``).
EXIT_FRAMES_FAILED = 3
#: Longest ``reason`` written [characters]; longer ones are cut with "...".
MAX_REASON_CHARS = 500

# module (or package) -> stage of a failure raised inside it
_MODULE_STAGES: tuple[tuple[str, str], ...] = (
    ("fluoro_perception.core.geometry", "geometry"),
    ("fluoro_perception.core.tracking", "tracking"),
    ("fluoro_perception.core.preprocess", "preprocess"),
    ("fluoro_perception.core.decode", "decode"),
    ("fluoro_perception.core.engine", "inference"),
    ("fluoro_perception.evaluation.oracle", "inference"),
    ("onnxruntime", "inference"),
    ("fluoro_perception.evaluation.frame_metrics", "metrics"),
    ("fluoro_perception.metrics", "metrics"),
)
_PIPELINE_MODULE = "fluoro_perception.core.pipeline"
# PerceptionPipeline.process times each stage with `timings["<stage>"] = ...` at its end
_TIMING_LINE = re.compile(r"""timings\[["'](\w+)["']\]\s*=""")
# pipeline timing key -> stage here ("decode" there decodes the network's outputs)
_TIMED_STAGES = {"decode": "inference", "total": "masks"}


class FrameError(Exception):
    """A failure of one frame at a known stage (raise it to name the stage)."""

    def __init__(self, stage: str, reason: str) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r}; expected one of {list(STAGES)}")
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


class ErrorsFormatError(ValueError):
    """An ``errors.jsonl`` record breaks the schema (one line naming the record and key)."""


def one_line(text: object) -> str:
    """``text`` (an exception: ``Type: message``) on one line of at most MAX_REASON_CHARS."""
    if isinstance(text, FrameError):
        line = text.reason
    elif isinstance(text, BaseException):
        message = str(text)
        line = f"{type(text).__name__}: {message}" if message else type(text).__name__
    else:
        line = str(text)
    line = " ".join(line.split()) or "unknown error"
    if len(line) > MAX_REASON_CHARS:
        line = line[: MAX_REASON_CHARS - 3] + "..."
    return line


def _module_stage(module: str) -> str | None:
    for prefix, stage in _MODULE_STAGES:
        if module == prefix or module.startswith(prefix + "."):
            return stage
    return None


def _timed_stage(code: Any, lineno: int) -> str | None:
    """The stage of ``PerceptionPipeline.process`` that line ``lineno`` belongs to: the
    first ``timings["<stage>"] =`` at or after it."""
    try:
        lines, first = inspect.getsourcelines(code)
    except (OSError, TypeError):
        return None
    for number, text in enumerate(lines, start=first):
        match = _TIMING_LINE.search(text) if number >= lineno else None
        if match is not None:
            stage = _TIMED_STAGES.get(match[1], match[1])
            return stage if stage in STAGES else None
    return None


def failure_stage(exc: BaseException, default: str = "pipeline") -> str:
    """The stage an exception raised while processing a frame comes from.

    A :class:`FrameError` names its own; a results schema error is ``validate``; else the
    traceback tells: the timed stage of ``PerceptionPipeline.process`` the failure came
    out of (the network and its outputs -> ``inference``, wires and stents ->
    ``geometry``, ...), or the innermost frame of a known module (``frame_metrics`` ->
    ``metrics``); ``default`` otherwise.
    """
    if isinstance(exc, FrameError):
        return exc.stage
    if isinstance(exc, ResultsFormatError):
        return "validate"
    frames = list(traceback.walk_tb(exc.__traceback__))
    for frame, lineno in frames:
        module = str(frame.f_globals.get("__name__", ""))
        if module == _PIPELINE_MODULE and frame.f_code.co_name == "process":
            return _timed_stage(frame.f_code, lineno) or "pipeline"
    for frame, _ in reversed(frames):
        stage = _module_stage(str(frame.f_globals.get("__name__", "")))
        if stage is not None:
            return stage
    return default


def error_record(frame: str | None, stage: str, reason: object, count: int = 1) -> dict[str, Any]:
    """One validated ``errors.jsonl`` object (``reason``: text or exception)."""
    record = {
        "frame": None if frame is None else str(frame),
        "stage": stage,
        "reason": one_line(reason),
        "count": int(count),
    }
    validate_error_record(record)
    return record


def validate_error_record(record: Any, where: str = "error record") -> None:
    """Check one ``errors.jsonl`` object against the schema (module docstring).

    Raises
    ------
    ErrorsFormatError
        One line naming ``where``, the key and what was expected.
    """
    if not isinstance(record, Mapping) or tuple(sorted(record)) != tuple(sorted(ERROR_KEYS)):
        keys = sorted(record) if isinstance(record, Mapping) else type(record).__name__
        raise ErrorsFormatError(f"{where} has keys {keys}; expected exactly {list(ERROR_KEYS)}")
    frame = record["frame"]
    if frame is not None and (not isinstance(frame, str) or not frame):
        raise ErrorsFormatError(f"{where}: frame = {frame!r}; expected a non-empty string or null")
    if record["stage"] not in STAGES:
        raise ErrorsFormatError(
            f"{where}: stage = {record['stage']!r}; expected one of {list(STAGES)}"
        )
    reason = record["reason"]
    if not isinstance(reason, str) or not reason or "\n" in reason:
        raise ErrorsFormatError(f"{where}: reason = {reason!r}; expected one non-empty line")
    count = record["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ErrorsFormatError(f"{where}: count = {count!r}; expected an int >= 1")
    if frame is not None and count != 1:
        raise ErrorsFormatError(f"{where}: count = {count} for frame {frame!r}; expected 1")


class FrameErrorLog(JsonlWriter):
    """Write ``errors.jsonl``, one flushed line per failed frame (use as a context manager).

    The file is created (empty) on entry, so a run without failures leaves an empty file
    and a replaced run leaves none of the previous records.

    Parameters
    ----------
    path : str or Path
        Output file (replaced).
    echo : callable or None
        Called with one line per record (e.g. ``tqdm.write`` to stderr); None = silent.
    """

    def __init__(self, path: str | Path, echo: Any = None) -> None:
        super().__init__(path)
        self.echo = echo
        self.by_stage: dict[str, int] = {}

    @property
    def count(self) -> int:
        """Frames recorded as failed so far."""
        return sum(self.by_stage.values())

    def add(self, frame: str | None, stage: str, reason: object, count: int = 1) -> dict:
        """Append one record (flushed at once); returns it."""
        self._require_open()
        record = error_record(frame, stage, reason, count)
        self._write_line(record)
        self.by_stage[stage] = self.by_stage.get(stage, 0) + record["count"]
        if self.echo is not None:
            who = f"{record['count']} unnamed frame(s)" if frame is None else f"frame {frame}"
            self.echo(f"failed: {who} [{stage}]: {record['reason']}")
        return record

    def add_exception(
        self, frame: str | None, exc: BaseException, default_stage: str = "pipeline"
    ) -> dict:
        """Append the record of a frame that raised ``exc`` (stage from :func:`failure_stage`)."""
        return self.add(frame, failure_stage(exc, default_stage), exc)

    def summary(self) -> str:
        """``"N failed (stage: n, ...)"`` for a command's summary line."""
        if not self.by_stage:
            return "0 failed"
        parts = ", ".join(f"{stage}: {n}" for stage, n in self.by_stage.items())
        return f"{self.count} failed ({parts}) -> {self.path}"

    def exit_code(self) -> int:
        """0 when no frame failed, else :data:`EXIT_FRAMES_FAILED`."""
        return EXIT_FRAMES_FAILED if self.by_stage else 0


def iter_errors(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the validated records of an ``errors.jsonl`` file (blank lines skipped).

    Raises
    ------
    ErrorsFormatError
        Invalid JSON or a record that breaks the schema, naming the file and line.
    """
    for where, record in iter_jsonl(path, ErrorsFormatError):
        validate_error_record(record, where)
        yield record


__all__ = [
    "ERRORS_FILE",
    "ERROR_KEYS",
    "EXIT_FRAMES_FAILED",
    "STAGES",
    "ErrorsFormatError",
    "FrameError",
    "FrameErrorLog",
    "error_record",
    "failure_stage",
    "iter_errors",
    "one_line",
    "validate_error_record",
]
