"""The classical baseline: a thresholded Frangi vesselness filter (``evaluate --baseline``).

Issue 12 measured the shipped network against "a classical Frangi vesselness filter with a
threshold" on foreign frames (centerline F1 0.17 vs 0.16): a model that does no better
than this filter has learned "dark curvilinear structure", not "guidewire". This engine
puts that filter in the network's place, on the network's own input grid, so every
comparison table can carry it as a row through the same runtime (geometry, tip choice,
tracking) and the same metrics.

The filter is scikit-image's :func:`skimage.filters.frangi` (Frangi et al. 1998) for DARK
ridges (instruments are dark on a fluoroscopy display) at scales ``sigmas`` [model px],
applied to the preprocessed network input. The response is divided by its
``NORM_PERCENTILE``-th percentile inside the exposed field and thresholded at
``THRESHOLD``: fixed once, from the filter's definition (a ridge as strong as the top
0.5 % of the frame), never tuned on any evaluation set. It has no stent, catheter or tip
output: stent metrics read 0 and tips come from the geometry alone.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from fluoro_perception.core.model_metadata import ModelMetadata

#: Scales of the Hessian [model px]: 1-3 px wires at 512 px (at 1 px the detector noise
#: of low-dose frames answers as strongly as a wire).
SIGMAS: tuple[float, ...] = (1.5, 2.0, 2.5, 3.0)
#: Field pixels this close to the collimator edge are left out (the edge is a ridge) [px].
EDGE_MARGIN_PX = 4
#: Percentile of the response inside the field that maps to 1.
NORM_PERCENTILE = 99.5
#: Normalized response at and above which a pixel is guidewire.
THRESHOLD = 0.5
#: Logit scale: logit = LOGIT_GAIN * (normalized response - THRESHOLD).
LOGIT_GAIN = 12.0


def _exposed(image: np.ndarray) -> np.ndarray:
    """Pixels of the network input that show the patient.

    Preprocessing fills the letterbox and the shutters with constants: perfectly flat 7x7
    patches, which a noisy exposed region never is, even when quantized to 8 bits. A
    pixel whose 7x7 window is constant marks its window as filled.
    """
    kernel = np.ones((7, 7), np.uint8)
    flat = (cv2.dilate(image, kernel) == cv2.erode(image, kernel)).astype(np.uint8)
    return ~cv2.dilate(flat, kernel).astype(bool)


class FrangiEngine:
    """Engine-like object (``metadata``, ``input_shape``, ``run``) of the Frangi baseline.

    Parameters
    ----------
    metadata : ModelMetadata
        A real model's metadata: its preprocessing (model grid) and classes are kept, the
        architecture reads ``frangi-baseline``; no tip head.
    """

    def __init__(self, metadata: ModelMetadata) -> None:
        self.metadata = dataclasses.replace(
            metadata, architecture="frangi-baseline", heads=("logits",)
        )
        self.input_shape = tuple(metadata.preprocessing.input_size)
        self.model_path = "frangi (scikit-image)"
        self.model_sha256 = "none"
        self.active_provider = "none (classical filter)"

    def run(self, net_input: np.ndarray) -> dict[str, np.ndarray]:
        """``{"logits": (1, C, h, w)}`` of a ``(1, 1, h, w)`` network input."""
        from skimage.filters import frangi

        image = np.asarray(net_input, np.float32)[0, 0]
        field = _exposed(image).astype(np.uint8)
        kernel = np.ones((2 * EDGE_MARGIN_PX + 1,) * 2, np.uint8)
        field = cv2.erode(field, kernel).astype(bool)
        response = frangi(image, sigmas=SIGMAS, black_ridges=True).astype(np.float32)
        response[~field] = 0.0
        inside = response[field]
        scale = float(np.percentile(inside, NORM_PERCENTILE)) if inside.size else 0.0
        normalized = response / scale if scale > 0 else np.zeros_like(response)
        classes = self.metadata.classes
        height, width = image.shape
        logits = np.zeros((1, len(classes), height, width), np.float32)
        for index, name in enumerate(classes):
            if name not in ("background", "guidewire"):
                logits[0, index] = -LOGIT_GAIN  # no stent / catheter output
        logits[0, classes.index("guidewire")] = LOGIT_GAIN * (normalized - THRESHOLD)
        return {"logits": logits}

    def close(self) -> None:
        """Nothing to release (same interface as the ONNX engine)."""


__all__ = ["EDGE_MARGIN_PX", "FrangiEngine", "LOGIT_GAIN", "NORM_PERCENTILE", "SIGMAS", "THRESHOLD"]
