"""Run the runtime pipeline over ground-truth frames and score every frame.

One place for what ``fluoro-perception evaluate`` and the training package's
``fluoro-train compare`` both do: frames arrive in dataset order (by sequence, then
frame); each bit depth gets its own :class:`PerceptionPipeline` so 12- and 16-bit frames
are scaled as recorded; tracking restarts at every new sequence; every result is scored
by :func:`compute_frame_metrics` into one :class:`EvaluationAccumulator`. A frame that
fails adds nothing to it; its exception names the stage for ``errors.jsonl``
(:func:`~fluoro_perception.evaluation.frame_errors.failure_stage`).
"""

from __future__ import annotations

from fluoro_perception.core.pipeline import EngineLike, PerceptionPipeline, PipelineConfig
from fluoro_perception.core.types import FrameResult
from fluoro_perception.evaluation.frame_errors import FrameError, one_line
from fluoro_perception.evaluation.frame_metrics import (
    EvaluationAccumulator,
    FrameMetrics,
    compute_frame_metrics,
)
from fluoro_perception.sim.types import SimFrame


class FrameEvaluator:
    """Score pipeline results of an engine on frames given in dataset order.

    Parameters
    ----------
    engine : EngineLike
        The loaded model (e.g. :class:`fluoro_perception.core.engine.InferenceEngine`).
    """

    def __init__(self, engine: EngineLike) -> None:
        self.engine = engine
        self.accumulator = EvaluationAccumulator()
        self._pipelines: dict[int | None, PerceptionPipeline] = {}
        self._sequence: str | None = None

    def evaluate(self, truth: SimFrame) -> tuple[FrameResult, FrameMetrics]:
        """Process ``truth.image`` as the node would and add its metrics to the total.

        An engine with an ``observe(frame)`` method (the ground-truth oracle of
        ``evaluate --oracle``) is shown the frame first.

        Raises
        ------
        Exception
            Whatever the pipeline raised for this frame, or a :class:`FrameError` with
            stage ``"metrics"`` when scoring it failed; the accumulator is unchanged.
        """
        observe = getattr(self.engine, "observe", None)
        if observe is not None:
            observe(truth)
        bit_depth = None if truth.bit_depth == 8 else truth.bit_depth
        if bit_depth not in self._pipelines:
            self._pipelines[bit_depth] = PerceptionPipeline(
                self.engine, PipelineConfig(bit_depth=bit_depth)
            )
        if truth.sequence_id != self._sequence:
            for pipeline in self._pipelines.values():
                pipeline.reset_tracking()
            self._sequence = truth.sequence_id
        stamp_ns = round(truth.timestamp_s * 1e9)
        result = self._pipelines[bit_depth].process(truth.image, stamp_ns, frame_encoding(truth))
        try:
            metrics = compute_frame_metrics(result, truth)
        except Exception as exc:
            raise FrameError("metrics", one_line(exc)) from exc
        self.accumulator.add(metrics)
        return result, metrics


def frame_encoding(truth: SimFrame) -> str:
    """``"mono8"`` for uint8 frames, ``"mono16"`` for 16-bit containers."""
    return "mono8" if truth.image.dtype.itemsize == 1 else "mono16"


__all__ = ["FrameEvaluator", "frame_encoding"]
