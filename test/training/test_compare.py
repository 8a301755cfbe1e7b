"""``fluoro-train compare``: the runtime-pipeline measurement of one model on test frames.

A random-weight ONNX model (``make_random_onnx_model``) on a few small simulator frames:
the test checks the frame accounting, not accuracy values.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fault_injection import fail_on_call
from model_fixtures import make_random_onnx_model

from fluoro_perception.sim import SequenceSimulator, SimConfig
from fluoro_training.compare import runtime_metrics

SIZE = 64
FRAMES = 4


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_onnx_model(tmp_path_factory.mktemp("model") / "random.onnx")


@pytest.fixture(scope="module")
def frames() -> list:
    simulator = SequenceSimulator(0, SimConfig(height=SIZE, width=SIZE, scenario="mono"))
    return simulator.frames(FRAMES)


def _count_calls(monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(target, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, counted)
    return calls


def test_runtime_metrics_count_no_failure_on_good_frames(onnx_model: Path, frames: list) -> None:
    metrics = runtime_metrics(onnx_model, frames)
    assert (metrics["failed_frames"], metrics["failed_frames_first_reason"]) == (0, None)


def test_a_frame_that_fails_is_counted_and_the_others_are_scored(
    onnx_model: Path, frames: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fluoro_perception.core.pipeline as pipeline_module
    import fluoro_perception.evaluation.runner as runner

    # extract_stents runs once per frame: the 2nd frame fails in the pipeline
    fail_on_call(
        monkeypatch, pipeline_module, "extract_stents", 2, lambda: RuntimeError("bad frame")
    )
    scored = _count_calls(monkeypatch, runner, "compute_frame_metrics")
    metrics = runtime_metrics(onnx_model, frames)
    assert metrics["failed_frames"] == 1
    second = frames[1]
    assert metrics["failed_frames_first_reason"] == (
        f"{second.sequence_id}/{second.frame_index:06d}: RuntimeError: bad frame"
    )
    assert len(scored) == FRAMES - 1  # every other frame was scored
    assert not math.isnan(metrics["tip_found_rate"])


def test_confusion_share_and_primary_tip_are_the_runtime_evaluations(
    onnx_model: Path, frames: list
) -> None:
    from fluoro_perception.core.engine import InferenceEngine
    from fluoro_perception.evaluation.runner import FrameEvaluator

    metrics = runtime_metrics(onnx_model, frames)
    engine = InferenceEngine(onnx_model, providers=["CPUExecutionProvider"])
    try:
        evaluator = FrameEvaluator(engine)
        for frame in frames:
            evaluator.evaluate(frame)
    finally:
        engine.close()
    summary = evaluator.accumulator.summary()["summary"]
    for key, summary_key in (
        ("confusion_share", "confusion_share"),
        ("primary_tip_correct", "primary_tip_correct_rate"),
    ):
        expected = summary[summary_key]
        if expected is None:
            assert math.isnan(metrics[key])
        else:
            assert metrics[key] == pytest.approx(expected)
