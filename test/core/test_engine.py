"""Tests of the ONNX Runtime engine (core/engine.py) on tiny random models (no torch)."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from model_fixtures import make_random_onnx_model

from fluoro_perception.core.engine import (
    CPU,
    CUDA,
    InferenceEngine,
    ModelLoadError,
    file_sha256,
    read_model_metadata,
)
from fluoro_perception.core.model_metadata import METADATA_KEY, ModelMetadata

CUDA_PRESENT = CUDA in ort.get_available_providers()


@pytest.fixture
def model_path(tmp_path):
    return make_random_onnx_model(tmp_path / "random.onnx")


def _engine(path, tmp_path, **kwargs):
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    kwargs.setdefault("providers", (CPU,))
    return InferenceEngine(path, **kwargs)


def test_loads_random_model_and_runs(model_path, tmp_path):
    engine = _engine(model_path, tmp_path, providers=("CUDAExecutionProvider", CPU))
    assert isinstance(engine.metadata, ModelMetadata)
    assert engine.metadata.architecture == "random_test_net"
    assert engine.input_shape == (64, 64)
    assert engine.active_provider == (CUDA if CUDA_PRESENT else CPU)
    assert engine.model_sha256 == hashlib.sha256(model_path.read_bytes()).hexdigest()
    outputs = engine.run(np.random.default_rng(0).random((2, 1, 64, 64), dtype=np.float32))
    assert set(outputs) == {"logits", "tip_heatmap"}
    assert outputs["logits"].shape == (2, 3, 64, 64)
    assert outputs["tip_heatmap"].shape == (2, 1, 64, 64)
    assert outputs["logits"].dtype == np.float32
    # a random model is not constant: the input reaches the outputs
    assert outputs["logits"].std() > 0
    engine.close()
    assert engine.closed
    with pytest.raises(RuntimeError, match="closed"):
        engine.run(np.zeros((1, 1, 64, 64), np.float32))


def test_outputs_match_plain_onnxruntime(model_path, tmp_path):
    net_input = np.random.default_rng(1).normal(size=(1, 1, 64, 64)).astype(np.float32)
    reference = ort.InferenceSession(str(model_path), providers=[CPU]).run(
        ["logits"], {"image": net_input}
    )[0]
    with _engine(model_path, tmp_path) as engine:
        np.testing.assert_allclose(engine.run(net_input)["logits"], reference, atol=1e-5)


@pytest.mark.skipif(CUDA_PRESENT, reason="checks the CPU fallback; CUDA is present here")
def test_cuda_request_falls_back_to_cpu_when_allowed(model_path, tmp_path):
    engine = _engine(model_path, tmp_path, providers=(CUDA,), allow_cpu_fallback=True)
    assert engine.active_provider == CPU


@pytest.mark.skipif(CUDA_PRESENT, reason="checks the CPU fallback; CUDA is present here")
@pytest.mark.parametrize(
    "providers", [(CUDA,), (CUDA, CPU), ("TensorrtExecutionProvider", CUDA, CPU)]
)
def test_cuda_request_without_fallback_names_the_provider(model_path, tmp_path, providers):
    with pytest.raises(ModelLoadError, match=CUDA) as info:
        _engine(model_path, tmp_path, providers=providers, allow_cpu_fallback=False)
    assert "allow_cpu_fallback" in str(info.value)
    assert "\n" not in str(info.value)


def test_explicit_cpu_without_fallback_is_allowed(model_path, tmp_path):
    engine = _engine(model_path, tmp_path, providers=(CPU,), allow_cpu_fallback=False)
    assert engine.active_provider == CPU


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"providers": "CPUExecutionProvider"}, TypeError, "providers"),
        ({"providers": ()}, ValueError, "providers is empty"),
        ({"warmup_runs": -1}, ValueError, "warmup_runs=-1"),
        ({"intra_op_threads": 1.5}, TypeError, "intra_op_threads"),
        ({"providers": ("NoSuchExecutionProvider",)}, ValueError, "NoSuchExecutionProvider"),
    ],
)
def test_bad_arguments(model_path, tmp_path, kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        _engine(model_path, tmp_path, **kwargs)


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _empty(path):
    path.write_bytes(b"")


def _set_metadata_text(path, text):
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: text})
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (_truncated, "not a readable ONNX protobuf"),
        (_random_bytes, "not a readable ONNX protobuf"),
        (_empty, "no nodes"),
        (lambda p: _set_metadata_text(p, "{not json"), "not valid JSON"),
        (lambda p: _set_metadata_text(p, "[1, 2]"), "must be a JSON object"),
        (lambda p: _set_metadata_text(p, json.dumps({"architecture": "x"})), "lacks required"),
    ],
)
def test_damaged_files(model_path, tmp_path, damage, fragment):
    damage(model_path)
    with pytest.raises(ModelLoadError, match=fragment) as info:
        _engine(model_path, tmp_path)
    message = str(info.value)
    assert str(model_path) in message
    assert "\n" not in message


@pytest.mark.parametrize("damage", [_truncated, lambda p: _set_metadata_text(p, "[1, 2]")])
def test_read_model_metadata_without_a_session(model_path, tmp_path, damage):
    assert read_model_metadata(model_path) == _engine(model_path, tmp_path).metadata
    damage(model_path)
    with pytest.raises(ModelLoadError, match=re.escape(str(model_path))):
        read_model_metadata(model_path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file"):
        _engine(tmp_path / "absent.onnx", tmp_path)


@pytest.mark.parametrize(
    ("fixture_kwargs", "fragment"),
    [
        ({"include_metadata": False}, "no 'fluoro_perception.metadata' entry"),
        ({"metadata_overrides": {"surprise": 1}}, "unknown fields"),
        ({"metadata_overrides": {"classes": ["guidewire", "stent"]}}, "background"),
        ({"metadata_overrides": {"format_version": 99}}, "format_version=99"),
        ({"metadata_overrides": {"preprocessing": {"normalization": "l2"}}}, "normalization"),
        # I/O that does not fit the metadata
        (
            {"metadata_overrides": {"classes": ["background", "guidewire", "stent", "catheter"]}},
            "'logits' has 3 channels; expected 4",
        ),
        ({"metadata_overrides": {"heads": ["logits"]}}, "graph outputs"),
        (
            {"heads": ("logits",), "metadata_overrides": {"heads": ["logits", "tip_heatmap"]}},
            "graph outputs",
        ),
        ({"metadata_overrides": {"input_name": "frame"}}, "graph inputs ['image']"),
        (
            {"metadata_overrides": {"preprocessing": {"input_size": [32, 32]}}},
            "expected (B, 1, 32, 32)",
        ),
    ],
)
def test_metadata_and_io_mismatch(tmp_path, fixture_kwargs, fragment):
    path = make_random_onnx_model(tmp_path / "model.onnx", **fixture_kwargs)
    with pytest.raises(ModelLoadError) as info:
        _engine(path, tmp_path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_sha256_checked_before_loading(model_path, tmp_path):
    digest = file_sha256(model_path)
    assert _engine(model_path, tmp_path, expected_sha256=digest.upper()).model_sha256 == digest
    with pytest.raises(ModelLoadError, match="does not match expected 00ff"):
        _engine(model_path, tmp_path, expected_sha256="00ff" * 16)


def test_run_rejects_wrong_input(model_path, tmp_path):
    engine = _engine(model_path, tmp_path, warmup_runs=0)
    for bad in (
        np.zeros((1, 1, 32, 32), np.float32),
        np.zeros((1, 1, 64, 64), np.float64),
        np.zeros((1, 64, 64), np.float32),
        [[0.0]],
    ):
        with pytest.raises(ValueError, match=r"expected float32 \(B, 1, 64, 64\)"):
            engine.run(bad)


def test_optimized_model_cache_written_reused_and_repaired(model_path, tmp_path):
    cache = tmp_path / "cache"
    first = _engine(model_path, tmp_path, cache_dir=cache)
    cached_files = list((cache / "ort_optimized").glob("*.onnx"))
    assert len(cached_files) == 1
    assert first.model_sha256[:32] in cached_files[0].name
    net_input = np.random.default_rng(2).random((1, 1, 64, 64), dtype=np.float32)
    expected = first.run(net_input)["logits"]
    # a second engine loads from the cache and computes the same thing
    np.testing.assert_allclose(
        _engine(model_path, tmp_path, cache_dir=cache).run(net_input)["logits"], expected, atol=1e-5
    )
    # a corrupt cache file is discarded and rebuilt, never fatal
    cached_files[0].write_bytes(b"garbage")
    third = _engine(model_path, tmp_path, cache_dir=cache)
    np.testing.assert_allclose(third.run(net_input)["logits"], expected, atol=1e-5)
    assert cached_files[0].stat().st_size > 100
    assert not list((cache / "ort_optimized").glob("*.tmp"))


def test_optimized_cache_can_be_disabled(model_path, tmp_path):
    _engine(model_path, tmp_path, use_optimized_cache=False)
    assert not (tmp_path / "cache").exists()


def test_io_binding_path_matches_plain_run(model_path, tmp_path):
    """The GPU IO-binding code path, run here with host buffers (no GPU on CI)."""
    plain = _engine(model_path, tmp_path, use_io_binding=False)
    bound = _engine(model_path, tmp_path, use_io_binding=True)
    rng = np.random.default_rng(4)
    for batch in (1, 1, 3, 1):  # same shape reuses the buffer; a new batch size re-binds
        net_input = rng.normal(size=(batch, 1, 64, 64)).astype(np.float32)
        expected = plain.run(net_input)
        got = bound.run(net_input)
        assert set(got) == {"logits", "tip_heatmap"}
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], atol=1e-5)
