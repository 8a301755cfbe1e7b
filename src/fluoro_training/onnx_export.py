"""Export a registry model to ONNX with its metadata, and check ONNX Runtime parity.

The exported graph follows the contract in :mod:`fluoro_perception.core.model_metadata`:

* input ``"image"``: float32 ``(B, 1, H, W)``, ``B`` dynamic when ``dynamic_batch``;
* outputs ``"logits"`` ``(B, num_classes, H, W)`` and, when the model has a tip head,
  ``"tip_heatmap"`` ``(B, 1, H, W)``;
* ``metadata_props[METADATA_KEY]``: the :class:`ModelMetadata` JSON.

``fluoro-train export`` (fp16 / INT8, config hash) builds on these functions.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from fluoro_perception.core.model_metadata import (
    METADATA_KEY,
    ModelMetadata,
    ModelMetadataError,
    PreprocessSpec,
)
from fluoro_perception.core.types import CLASS_NAMES
from fluoro_training.models import available_models, model_class
from fluoro_training.models.base import SegmentationNet

INPUT_NAME = "image"


class OnnxParityError(RuntimeError):
    """ONNX Runtime outputs differ from the torch model by more than the tolerance."""


class _EvalOutputs(nn.Module):
    """Turns the model's output dict into the tuple ``(logits[, tip_heatmap])`` for export."""

    def __init__(self, model: SegmentationNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(image)
        return tuple(outputs[name] for name in output_names(self.model))


def output_names(model: SegmentationNet) -> tuple[str, ...]:
    """ONNX output names of ``model``: ``("logits",)`` or ``("logits", "tip_heatmap")``."""
    return ("logits", "tip_heatmap") if model.tip_head else ("logits",)


def registry_name(model: SegmentationNet) -> str:
    """The ``create_model`` name of ``model``'s class, else its class name."""
    for name in available_models():
        try:
            if model_class(name) is type(model):
                return name
        except (ImportError, AttributeError):  # a module that does not load cannot match
            continue
    return type(model).__name__


def default_metadata(
    model: SegmentationNet, input_size: tuple[int, int], architecture: str | None = None
) -> ModelMetadata:
    """Metadata describing ``model`` with default preprocessing at ``input_size`` [px].

    Class names are :data:`fluoro_perception.core.types.CLASS_NAMES` when the model has that
    many classes, else ``("background", "class_1", ...)``.
    """
    if model.num_classes == len(CLASS_NAMES):
        classes = CLASS_NAMES
    else:
        classes = ("background", *(f"class_{i}" for i in range(1, model.num_classes)))
    return ModelMetadata(
        architecture=architecture or registry_name(model),
        classes=classes,
        heads=output_names(model),
        stride=model.stride,
        preprocessing=PreprocessSpec(input_size=tuple(input_size)),
    )


def _check_input_size(model: SegmentationNet, input_size: tuple[int, int]) -> tuple[int, int]:
    if len(input_size) != 2 or min(int(v) for v in input_size) <= 0:
        raise ValueError(f"input_size={input_size!r}; expected (height, width) > 0 [px]")
    height, width = int(input_size[0]), int(input_size[1])
    if height % model.stride or width % model.stride:
        pad_h = -(-height // model.stride) * model.stride
        pad_w = -(-width // model.stride) * model.stride
        raise ValueError(
            f"input_size={height}x{width} is not divisible by the model stride {model.stride}; "
            f"use {pad_h}x{pad_w}"
        )
    return height, width


def export_onnx(
    model: SegmentationNet,
    path: str | os.PathLike,
    input_size: tuple[int, int] = (512, 512),
    metadata: ModelMetadata | None = None,
    opset: int = 17,
    dynamic_batch: bool = True,
) -> Path:
    """Export ``model`` (in eval mode) to an ONNX file carrying its metadata.

    Parameters
    ----------
    model : SegmentationNet
        Registry model; its training mode is restored afterwards.
    path : str or PathLike
        Output ``.onnx`` file; parent folders are created.
    input_size : (int, int)
        Static ``(H, W)`` of the exported input [px], multiples of ``model.stride``.
    metadata : ModelMetadata, optional
        Written into ``metadata_props``; default :func:`default_metadata`. Its heads,
        stride, class count and input size must agree with the model.
    opset : int
        ONNX opset version.
    dynamic_batch : bool
        Export the batch axis as dynamic (``"batch"``) instead of fixed to 1.

    Returns
    -------
    Path
        The written file, checked with ``onnx.checker``.
    """
    if not isinstance(model, SegmentationNet):
        raise TypeError(
            f"model is {type(model).__name__}; expected a SegmentationNet from create_model()"
        )
    height, width = _check_input_size(model, input_size)
    names = output_names(model)
    if metadata is None:
        metadata = default_metadata(model, (height, width))
    _check_metadata_fits(metadata, model, (height, width), names)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic_axes = {name: {0: "batch"} for name in (INPUT_NAME, *names)} if dynamic_batch else None
    dummy = torch.zeros(1, model.in_channels, height, width)  # (1, 1, H, W)
    was_training = model.training
    model.eval()
    try:
        # Tracer warnings about shape checks turned into constants are expected: H and W
        # are static in the exported graph, only the batch axis is dynamic.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                _EvalOutputs(model),
                (dummy,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=list(names),
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        model.train(was_training)

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = metadata.to_json()
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def _check_metadata_fits(
    metadata: ModelMetadata,
    model: SegmentationNet,
    input_size: tuple[int, int],
    names: tuple[str, ...],
) -> None:
    if not isinstance(metadata, ModelMetadata):
        raise TypeError(f"metadata is {type(metadata).__name__}; expected ModelMetadata or None")
    if tuple(metadata.heads) != names:
        raise ValueError(
            f"metadata.heads={list(metadata.heads)} but the model outputs {list(names)}; "
            "set heads to the model's outputs"
        )
    if len(metadata.classes) != model.num_classes:
        raise ValueError(
            f"metadata.classes has {len(metadata.classes)} names but the model has "
            f"{model.num_classes} classes; list one name per output channel"
        )
    if metadata.stride != model.stride:
        raise ValueError(
            f"metadata.stride={metadata.stride} but the model stride is {model.stride}; "
            "use the model's stride"
        )
    if tuple(metadata.preprocessing.input_size) != tuple(input_size):
        raise ValueError(
            f"metadata input_size={metadata.preprocessing.input_size} but exporting at "
            f"{input_size}; make them equal"
        )


def check_parity(
    model: SegmentationNet,
    path: str | os.PathLike,
    input_size: tuple[int, int] = (512, 512),
    batch: int = 2,
    seed: int = 0,
    tol: float = 1e-4,
) -> float:
    """Max absolute difference between torch (eval) and ONNX Runtime CPU outputs.

    Runs both on the same standard-normal input ``(batch, 1, H, W)`` drawn with ``seed``,
    over every output of the ONNX file. An output may differ by ``tol`` times its largest
    magnitude when that exceeds 1 (float32 rounding grows with the values), else by ``tol``.

    Returns
    -------
    float
        ``max |torch - onnxruntime|`` over all outputs and elements.

    Raises
    ------
    OnnxParityError
        When an output differs by more than allowed or the outputs differ in names or shapes.
    """
    height, width = _check_input_size(model, input_size)
    if batch < 1:
        raise ValueError(f"batch={batch}; expected >= 1")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported_batch = session.get_inputs()[0].shape[0]
    if isinstance(exported_batch, int):  # exported with dynamic_batch=False
        batch = exported_batch
    generator = np.random.default_rng(seed)
    image = generator.standard_normal((batch, model.in_channels, height, width)).astype(np.float32)
    onnx_names = [o.name for o in session.get_outputs()]
    expected_names = list(output_names(model))
    if onnx_names != expected_names:
        raise OnnxParityError(f"ONNX outputs {onnx_names}; the model outputs {expected_names}")
    onnx_outputs = session.run(None, {INPUT_NAME: image})

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            torch_outputs = model(torch.from_numpy(image))
    finally:
        model.train(was_training)

    max_diff = 0.0
    for name, onnx_out in zip(onnx_names, onnx_outputs, strict=True):
        torch_out = torch_outputs[name].numpy()
        if torch_out.shape != onnx_out.shape:
            raise OnnxParityError(
                f"output {name!r}: ONNX shape {onnx_out.shape}, torch shape {torch_out.shape}"
            )
        diff = float(np.max(np.abs(torch_out - onnx_out)))
        # float32 rounding grows with the values: outputs of magnitude m may differ by
        # tol * m (an absolute tol for |m| <= 1, relative above)
        allowed = tol * max(1.0, float(np.max(np.abs(torch_out))))
        if not diff <= allowed:  # also catches NaN
            raise OnnxParityError(
                f"ONNX Runtime differs from torch by {diff:.3g} > {allowed:.3g} (tol={tol:g} "
                f"x max(1, max |output|)) in output {name!r} of {path}"
            )
        max_diff = max(max_diff, diff)
    return max_diff


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """Read the :class:`ModelMetadata` stored in an ONNX file's ``metadata_props``."""
    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return ModelMetadata.from_json(entry.value)
    raise ModelMetadataError(
        f"{path} has no {METADATA_KEY!r} metadata; export it with fluoro_training.onnx_export"
    )
