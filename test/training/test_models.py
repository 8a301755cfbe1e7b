"""Shared model tester: every architecture in the registry passes the same checks.

For each name in ``available_models()`` (small ``width_mult``, inputs of a few strides):
forward shapes, eval outputs, finite gradients for every trainable parameter, rejection
of sizes not divisible by the stride (the message names the padded size), ONNX export
with a dynamic batch, ONNX Runtime parity <= 1e-4 and the metadata round trip.
Plus the error paths of ``fluoro_training.onnx_export``.
"""

from __future__ import annotations

import onnx
import onnxruntime as ort
import pytest
import torch

from fluoro_perception.core.model_metadata import (
    METADATA_KEY,
    ModelMetadata,
    ModelMetadataError,
    PreprocessSpec,
)
from fluoro_training.models import available_models, create_model
from fluoro_training.onnx_export import (
    OnnxParityError,
    check_parity,
    default_metadata,
    export_onnx,
    read_metadata,
)

MODEL_NAMES = available_models()
#: Width used by the shared tester: small enough that the whole file runs in minutes.
TEST_WIDTH_MULT = 0.25
PARITY_TOL = 1e-4


def build(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, width_mult=TEST_WIDTH_MULT, **kwargs)


def test_size(model) -> tuple[int, int]:
    """A small non-square input: 2 x 3 strides (catches H / W mix-ups)."""
    return 2 * model.stride, 3 * model.stride


test_size.__test__ = False  # a helper, not a test


def _tensors(value) -> list[torch.Tensor]:
    """All tensors in a model output (nested lists / dicts flattened)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


def test_registry_lists_seven_architectures():
    assert MODEL_NAMES == sorted(
        ["attention_unet", "ddr_sapc_u", "fga_net", "fra_net", "lda_net", "lsnet", "unet"]
    )


@pytest.mark.parametrize("tip_head", [True, False])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_eval_forward_shapes_and_outputs(name, tip_head):
    model = build(name, tip_head=tip_head).eval()
    height, width = test_size(model)
    with torch.no_grad():
        outputs = model(torch.randn(2, 1, height, width))
    expected_keys = {"logits", "tip_heatmap"} if tip_head else {"logits"}
    assert set(outputs) == expected_keys, f"eval mode must return only {expected_keys}"
    assert outputs["logits"].shape == (2, 3, height, width)
    if tip_head:
        assert outputs["tip_heatmap"].shape == (2, 1, height, width)
    assert all(torch.isfinite(t).all() for t in outputs.values())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_num_classes_sets_logit_channels(name):
    model = build(name, num_classes=4).eval()
    height, width = test_size(model)
    with torch.no_grad():
        logits = model(torch.randn(1, 1, height, width))["logits"]
    assert logits.shape == (1, 4, height, width)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_train_forward_backward_gives_finite_grads_to_all_params(name):
    model = build(name).train()
    height, width = test_size(model)
    outputs = model(torch.randn(2, 1, height, width))
    assert outputs["logits"].shape == (2, 3, height, width)
    assert outputs["tip_heatmap"].shape == (2, 1, height, width)
    for aux in outputs.get("aux_logits", []):
        assert aux.shape[:2] == (2, 3) and aux.ndim == 4
    generator = torch.Generator().manual_seed(1)
    # random weights per element: a plain sum would give BN-normalised layers zero gradient
    loss = sum(
        (t * torch.randn(t.shape, generator=generator)).sum()
        for t in _tensors(outputs)
        if t.is_floating_point()
    )
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]} (of {len(missing)})"
    not_finite = [
        n for n, p in model.named_parameters() if p.grad is not None and not p.grad.isfinite().all()
    ]
    assert not not_finite, f"non-finite gradients: {not_finite[:5]}"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_input_not_divisible_by_stride_is_rejected_with_padded_size(name):
    model = build(name).eval()
    stride = model.stride
    height, width = 2 * stride, 2 * stride - 1  # width one pixel short of a multiple
    with pytest.raises(ValueError, match=f"pad to {2 * stride}x{2 * stride}"):
        model(torch.zeros(1, 1, height, width))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_multichannel_input_is_rejected(name):
    model = build(name).eval()
    height, width = test_size(model)
    with pytest.raises(ValueError, match=r"expects input \(B, 1, H, W\)"):
        model(torch.zeros(1, 3, height, width))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_onnx_export_dynamic_batch_parity_and_metadata(name, tmp_path):
    model = build(name)
    input_size = test_size(model)
    metadata = ModelMetadata(
        architecture=name,
        classes=("background", "guidewire", "stent"),
        heads=("logits", "tip_heatmap"),
        stride=model.stride,
        preprocessing=PreprocessSpec(input_size=input_size, normalization="zscore"),
        version="9.8.7",
        validation_metrics={"dice_guidewire": 0.5},
    )
    path = export_onnx(model, tmp_path / f"{name}.onnx", input_size, metadata=metadata)
    assert model.training, "export must restore the model's training mode"

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["logits", "tip_heatmap"]
    batch_dim, channels, height, width = session.get_inputs()[0].shape
    assert isinstance(batch_dim, str), f"batch axis must be dynamic, got {batch_dim}"
    assert (channels, height, width) == (1, *input_size)

    # exported with batch 1, run with batch 2: proves the dynamic batch axis works
    max_diff = check_parity(model, path, input_size, batch=2, seed=0, tol=PARITY_TOL)
    assert 0.0 <= max_diff <= PARITY_TOL
    assert read_metadata(path) == metadata


def test_default_metadata_uses_registry_name_and_model_heads(tmp_path):
    model = build("fra_net", tip_head=False)
    path = export_onnx(model, tmp_path / "fra.onnx", (64, 64), dynamic_batch=False)
    metadata = read_metadata(path)
    assert metadata == default_metadata(model, (64, 64))
    assert metadata.architecture == "fra_net"
    assert metadata.heads == ("logits",)
    assert metadata.classes == ("background", "guidewire", "stent")
    assert metadata.stride == 32
    assert metadata.preprocessing.input_size == (64, 64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 1, 64, 64]
    # a static batch of 1: check_parity runs the batch the file was exported with
    assert check_parity(model, path, (64, 64), batch=2) <= PARITY_TOL


def test_export_writes_metadata_under_the_contract_key(tmp_path):
    model = build("lda_net")
    path = export_onnx(model, tmp_path / "lda.onnx", (64, 64))
    proto = onnx.load(str(path))
    keys = [entry.key for entry in proto.metadata_props]
    assert keys == [METADATA_KEY]
    onnx.checker.check_model(proto)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"heads": ("logits",)}, "metadata.heads"),
        ({"classes": ("background", "guidewire")}, "metadata.classes has 2 names"),
        ({"stride": 16}, "metadata.stride=16"),
        ({"preprocessing": PreprocessSpec(input_size=(128, 128))}, "metadata input_size"),
    ],
)
def test_export_rejects_metadata_that_does_not_fit_the_model(tmp_path, overrides, message):
    model = build("fra_net")
    fields = {
        "architecture": "fra_net",
        "classes": ("background", "guidewire", "stent"),
        "heads": ("logits", "tip_heatmap"),
        "stride": 32,
        "preprocessing": PreprocessSpec(input_size=(64, 64)),
        **overrides,
    }
    with pytest.raises(ValueError, match=message):
        export_onnx(model, tmp_path / "m.onnx", (64, 64), metadata=ModelMetadata(**fields))
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    ("input_size", "message"),
    [((64, 80), "use 64x96"), ((0, 64), "expected \\(height, width\\) > 0")],
)
def test_export_rejects_bad_input_size(tmp_path, input_size, message):
    with pytest.raises(ValueError, match=message):
        export_onnx(build("fra_net"), tmp_path / "m.onnx", input_size)


def test_export_rejects_non_registry_model(tmp_path):
    with pytest.raises(TypeError, match="expected a SegmentationNet"):
        export_onnx(torch.nn.Conv2d(1, 3, 1), tmp_path / "m.onnx", (64, 64))


def test_check_parity_raises_when_onnx_and_torch_differ(tmp_path):
    model = build("fra_net")
    path = export_onnx(model, tmp_path / "m.onnx", (64, 64))
    with torch.no_grad():  # change the torch weights after export
        model.classifier.bias.add_(1.0)
    with pytest.raises(OnnxParityError, match="differs from torch by 1 > .* in output 'logits'"):
        check_parity(model, path, (64, 64))


def test_check_parity_tolerance_grows_with_the_output_magnitude(tmp_path):
    """Logits in the thousands carry float32 rounding differences above an absolute 1e-4
    (L-SNet's clamped logits of 10 differed by 2.9e-4); the tolerance scales with them,
    while a real error of the same relative size as an absolute one is still caught."""
    model = build("fra_net")
    with torch.no_grad():  # logits of ~1e5: float32 rounding alone exceeds 1e-4 whatever
        # the thread count (at ~3e3 it reached 6e-5 in one full-suite run, 1.2e-4 alone)
        model.classifier.weight.mul_(1e5)
        model.classifier.bias.mul_(1e5)
    path = export_onnx(model, tmp_path / "big.onnx", (64, 64))
    diff = check_parity(model, path, (64, 64), tol=1e-4)
    assert diff > 1e-4  # an absolute 1e-4 would have refused this faithful export
    with torch.no_grad():
        model.classifier.bias.add_(300.0)
    with pytest.raises(OnnxParityError, match="in output 'logits'"):
        check_parity(model, path, (64, 64), tol=1e-4)


def test_check_parity_raises_when_output_names_differ(tmp_path):
    path = export_onnx(build("fra_net", tip_head=False), tmp_path / "m.onnx", (64, 64))
    with pytest.raises(OnnxParityError, match="ONNX outputs \\['logits'\\]"):
        check_parity(build("fra_net", tip_head=True), path, (64, 64))


def test_read_metadata_without_metadata_raises(tmp_path):
    path = export_onnx(build("fra_net"), tmp_path / "m.onnx", (64, 64))
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.save(proto, str(path))
    with pytest.raises(ModelMetadataError, match="has no 'fluoro_perception.metadata'"):
        read_metadata(path)
