"""The classical Frangi baseline engine (``fluoro_perception.evaluation.baseline``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fluoro_perception.core.model_metadata import ModelMetadata, PreprocessSpec
from fluoro_perception.evaluation.baseline import EDGE_MARGIN_PX, FrangiEngine

SIZE = 96


def _metadata(classes=("background", "guidewire", "stent", "catheter")) -> ModelMetadata:
    return ModelMetadata(
        architecture="fra_net",
        classes=classes,
        heads=("logits", "tip_heatmap"),
        stride=32,
        preprocessing=PreprocessSpec(input_size=(SIZE, SIZE)),
    )


def _input_with_a_dark_line() -> np.ndarray:
    image = np.full((SIZE, SIZE), 1.0, np.float32)
    cv2.line(image, (20, 48), (76, 48), -1.0, 2)
    # a little detector noise: exposed pixels never repeat one value exactly, fill does
    noise = np.random.default_rng(0).normal(0.0, 0.01, image.shape).astype(np.float32)
    return (image + noise)[None, None]


def test_frangi_marks_a_dark_ridge_as_guidewire_only():
    engine = FrangiEngine(_metadata())
    logits = engine.run(_input_with_a_dark_line())["logits"]
    assert logits.shape == (1, 4, SIZE, SIZE)
    labels = logits[0].argmax(0)
    assert (labels[47:50, 30:66] == 1).mean() > 0.6  # on the line
    assert (labels[10:30, :] == 0).all() and (labels[70:, :] == 0).all()  # flat background
    assert not np.isin(labels, [2, 3]).any()  # no stent or catheter output
    assert (
        engine.metadata.heads == ("logits",) and engine.metadata.architecture == "frangi-baseline"
    )


def test_frangi_ignores_the_collimator_edge():
    image = _input_with_a_dark_line()
    pad = _metadata().preprocessing.pad_value
    image[0, 0, :, 80:] = pad  # a shutter: everything right of x = 80 is outside
    labels = FrangiEngine(_metadata()).run(image)["logits"][0].argmax(0)
    assert (labels[:, 80 - EDGE_MARGIN_PX :] == 0).all()


def test_frangi_without_a_guidewire_class_is_rejected():
    engine = FrangiEngine(_metadata(classes=("background", "stent")))
    with pytest.raises(ValueError):
        engine.run(_input_with_a_dark_line())


def test_frangi_leaves_out_the_letterbox_of_a_real_preprocessed_frame():
    from fluoro_perception.core.decode import to_mono_float
    from fluoro_perception.core.preprocess import Preprocessor
    from fluoro_perception.evaluation.baseline import _exposed
    from fluoro_perception.sim import SequenceSimulator, SimConfig

    spec = PreprocessSpec(input_size=(128, 128))
    config = SimConfig(height=128, width=96, scenario="collimation")  # letterboxed + shutters
    frame = SequenceSimulator(3, config).frames(1)[0]
    net_input, transform, _ = Preprocessor(spec)(to_mono_float(frame.image, "mono8"))
    exposed = _exposed(net_input[0, 0])
    field = transform.image_to_model(frame.field_mask.astype(np.uint8), "nearest") > 0
    # every exposed pixel found is in the true field, and most of the field is found
    assert not (exposed & ~field).any()
    assert exposed[field].mean() > 0.95
