"""The contract between an exported model and the runtime.

``fluoro-train export`` writes one JSON document into the ONNX file's
``metadata_props`` under :data:`METADATA_KEY`; the runtime reads it back so that the
node needs no hand-kept copy of classes, heads, input size or preprocessing.
Both sides use this module, so the two cannot drift.

Tensor layout of an exported model:

* input  ``image``: float32 ``(B, 1, H, W)``, preprocessed as ``preprocessing`` says;
  ``H`` and ``W`` are multiples of ``stride``.
* output ``logits``: float32 ``(B, len(classes), H, W)`` (pre-softmax).
* output ``tip_heatmap`` (if ``"tip_heatmap" in heads``): float32 ``(B, 1, H, W)``
  (pre-sigmoid logits of a Gaussian tip heatmap).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

METADATA_KEY = "fluoro_perception.metadata"
FORMAT_VERSION = 1

NORMALIZATIONS = ("zscore", "mask_zscore", "fixed", "minmax")
RESIZE_MODES = ("letterbox", "stretch")
KNOWN_HEADS = ("logits", "tip_heatmap")


class ModelMetadataError(ValueError):
    """The model's metadata is missing, malformed or does not fit what is expected."""


@dataclass(frozen=True)
class PreprocessSpec:
    """How a raw frame becomes the network input (shared by training and serving).

    Attributes
    ----------
    input_size : tuple[int, int]
        Network input ``(height, width)`` [px].
    crop_to_field : bool
        Crop to the bounding box of the exposed (collimated) field before resizing
        (FGA-Net, seed 002 Sec. 3.1 "crop to non-zero region").
    field_threshold : float
        Grey level in ``[0, 1]`` at or below which a pixel counts as outside the exposed
        field (black shutters / circular field-of-view border).
    normalization : str
        ``"zscore"`` per image; ``"mask_zscore"`` z-score with statistics over the
        exposed field only (FGA-Net's mask-guided normalization); ``"fixed"`` with
        ``mean``/``std``; ``"minmax"`` to ``[0, 1]``.
    mean, std : float
        Used by ``"fixed"`` normalization, on intensities scaled to ``[0, 1]``.
    resize_mode : str
        ``"letterbox"`` keeps the aspect ratio and pads with ``pad_value``;
        ``"stretch"`` resizes each axis independently.
    pad_value : float
        Value of padded pixels *after* normalization.
    """

    input_size: tuple[int, int] = (512, 512)
    crop_to_field: bool = True
    field_threshold: float = 0.02
    normalization: str = "mask_zscore"
    mean: float = 0.5
    std: float = 0.25
    resize_mode: str = "letterbox"
    pad_value: float = 0.0

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise ModelMetadataError(
                f"preprocessing.normalization={self.normalization!r}; expected one of {NORMALIZATIONS}"
            )
        if self.resize_mode not in RESIZE_MODES:
            raise ModelMetadataError(
                f"preprocessing.resize_mode={self.resize_mode!r}; expected one of {RESIZE_MODES}"
            )
        if len(self.input_size) != 2 or min(self.input_size) <= 0:
            raise ModelMetadataError(
                f"preprocessing.input_size={self.input_size!r}; expected (height, width) > 0"
            )
        if self.std <= 0:
            raise ModelMetadataError(f"preprocessing.std={self.std}; expected > 0")
        object.__setattr__(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the runtime needs to know about an exported model."""

    architecture: str
    classes: tuple[str, ...]
    heads: tuple[str, ...]
    stride: int
    preprocessing: PreprocessSpec = field(default_factory=PreprocessSpec)
    input_name: str = "image"
    version: str = "0.1.0"
    format_version: int = FORMAT_VERSION
    training_config_hash: str = ""
    validation_metrics: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "heads", tuple(self.heads))
        if self.format_version != FORMAT_VERSION:
            raise ModelMetadataError(
                f"metadata format_version={self.format_version}; this runtime reads {FORMAT_VERSION}"
            )
        if len(self.classes) < 2 or self.classes[0] != "background":
            raise ModelMetadataError(
                f"classes={list(self.classes)}; expected 'background' first and at least 2 classes"
            )
        if "logits" not in self.heads:
            raise ModelMetadataError(f"heads={list(self.heads)}; a 'logits' head is required")
        unknown = [h for h in self.heads if h not in KNOWN_HEADS]
        if unknown:
            raise ModelMetadataError(f"heads {unknown} unknown; expected a subset of {KNOWN_HEADS}")
        if self.stride <= 0:
            raise ModelMetadataError(f"stride={self.stride}; expected a positive integer")
        height, width = self.preprocessing.input_size
        if height % self.stride or width % self.stride:
            raise ModelMetadataError(
                f"input_size={self.preprocessing.input_size} is not divisible by stride={self.stride}"
            )

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.heads

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelMetadataError(f"model metadata is not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ModelMetadataError("model metadata must be a JSON object")
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelMetadata:
        known = {f.name for f in fields(cls)}
        missing = [n for n in ("architecture", "classes", "heads", "stride") if n not in raw]
        if missing:
            raise ModelMetadataError(f"model metadata lacks required fields {missing}")
        unexpected = sorted(set(raw) - known)
        if unexpected:
            raise ModelMetadataError(f"model metadata has unknown fields {unexpected}")
        values = dict(raw)
        pre = values.get("preprocessing", {})
        if not isinstance(pre, dict):
            raise ModelMetadataError("metadata 'preprocessing' must be an object")
        pre_known = {f.name for f in fields(PreprocessSpec)}
        pre_unexpected = sorted(set(pre) - pre_known)
        if pre_unexpected:
            raise ModelMetadataError(f"metadata preprocessing has unknown fields {pre_unexpected}")
        if "input_size" in pre:
            pre = {**pre, "input_size": tuple(pre["input_size"])}
        values["preprocessing"] = PreprocessSpec(**pre)
        return cls(**values)
