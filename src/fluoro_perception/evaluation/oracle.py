"""A stand-in network that outputs each frame's ground truth (``evaluate --oracle``).

Evaluating with it measures the ceiling of everything after the network, on the model
grid of a real model: preprocessing, decoding, wire geometry (skeleton, junctions, gap and
stent bridging, tip choice), stent geometry and tracking. A target that the oracle misses
cannot be reached by training a better segmentation model alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fluoro_perception.core.decode import to_mono_float
from fluoro_perception.core.model_metadata import ModelMetadata
from fluoro_perception.core.preprocess import Preprocessor
from fluoro_perception.core.types import GT_CLASS_NAMES
from fluoro_perception.evaluation.runner import frame_encoding
from fluoro_perception.sim.types import SimFrame

#: Logit of the true class (others get minus this): softmax probability ~1 - 6e-6.
ORACLE_LOGIT = 6.0
#: Tip heatmap: Gaussian of this standard deviation [model px] at each visible tip.
ORACLE_TIP_SIGMA_PX = 2.0


class GroundTruthEngine:
    """Engine-like object (``metadata``, ``input_shape``, ``run``) for one model grid.

    Call :meth:`observe` with a frame before the pipeline processes that frame's image;
    :class:`fluoro_perception.evaluation.runner.FrameEvaluator` does.

    Parameters
    ----------
    metadata : ModelMetadata
        The real model's metadata: classes, heads and preprocessing (model grid) are
        kept, the architecture is reported as ``oracle(<architecture>)``.
    """

    def __init__(self, metadata: ModelMetadata) -> None:
        self.metadata = dataclasses.replace(
            metadata, architecture=f"oracle({metadata.architecture})"
        )
        self.input_shape = tuple(metadata.preprocessing.input_size)
        self.model_path = "ground truth"
        self.model_sha256 = "none"
        self.active_provider = "none (ground truth)"
        self._preprocessor = Preprocessor(metadata.preprocessing)
        self._frame: SimFrame | None = None

    def observe(self, truth: SimFrame) -> None:
        """The frame whose ground truth the next :meth:`run` returns."""
        self._frame = truth

    def run(self, net_input: np.ndarray) -> dict[str, np.ndarray]:
        """Ground-truth logits ``(1, C, h, w)`` (and tip heatmap logits) of the observed
        frame on the model grid; ``net_input`` only fixes the shape."""
        frame = self._frame
        if frame is None:
            raise RuntimeError("GroundTruthEngine.run before observe(frame); expected a frame")
        grey = to_mono_float(frame.image, frame_encoding(frame), bit_depth=frame.bit_depth)
        _, transform, _ = self._preprocessor(grey)
        labels = transform.image_to_model(frame.labels, "nearest")
        height, width = self.input_shape
        classes = self.metadata.classes
        logits = np.full((1, len(classes), height, width), -ORACLE_LOGIT, np.float32)
        truth_index = {name: index for index, name in enumerate(GT_CLASS_NAMES)}
        claimed = np.zeros((height, width), bool)
        for class_index, name in enumerate(classes):
            if name in truth_index and name != "background":
                here = labels == truth_index[name]
                logits[0, class_index][here] = ORACLE_LOGIT
                claimed |= here
        if "background" in classes:
            logits[0, classes.index("background")][~claimed] = ORACLE_LOGIT
        outputs = {"logits": logits}
        if "tip_heatmap" in self.metadata.heads:
            ys, xs = np.mgrid[:height, :width]
            heat = np.zeros((height, width), np.float32)
            for wire in frame.wires:
                if wire.tip_visible:
                    x, y = transform.points_to_model(np.asarray(wire.tip_px, np.float32)[None])[0]
                    gauss = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * ORACLE_TIP_SIGMA_PX**2))
                    heat = np.maximum(heat, gauss.astype(np.float32))
            # logit of the heatmap probability, clipped away from 0 and 1
            prob = np.clip(heat, 1e-4, 1 - 1e-4)
            outputs["tip_heatmap"] = np.log(prob / (1 - prob))[None, None].astype(np.float32)
        return outputs

    def close(self) -> None:
        """Nothing to release (same interface as the ONNX engine)."""


__all__ = ["GroundTruthEngine"]
