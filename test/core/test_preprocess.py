"""Tests of preprocessing and the input <-> model grid transform (core/preprocess.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from fluoro_perception.core.model_metadata import PreprocessSpec
from fluoro_perception.core.preprocess import (
    FrameTransform,
    Preprocessor,
    exposed_field_mask,
    fill_holes,
    make_frame_transform,
    mask_bounding_box,
)


@pytest.mark.parametrize(
    ("input_shape", "crop_box", "model_shape", "mode", "expected"),
    [
        # (scale_x, scale_y, pad_x, pad_y), computed by hand
        ((100, 200), None, (64, 64), "letterbox", (0.32, 0.32, 0, 16)),
        ((100, 200), None, (64, 64), "stretch", (0.32, 0.64, 0, 0)),
        ((300, 400), (100, 50, 300, 250), (64, 64), "letterbox", (0.32, 0.32, 0, 0)),
        ((50, 50), None, (64, 128), "letterbox", (1.28, 1.28, 32, 0)),
        # 20x30 crop: scale min(3.2, 2.133) -> content 43 x 64, pad (64 - 43) // 2 = 10
        ((30, 20), (0, 0, 20, 30), (64, 64), "letterbox", (43 / 20, 64 / 30, 10, 0)),
        ((64, 64), None, (64, 64), "letterbox", (1.0, 1.0, 0, 0)),
    ],
)
def test_make_frame_transform(input_shape, crop_box, model_shape, mode, expected):
    transform = make_frame_transform(input_shape, crop_box, model_shape, mode)
    scale_x, scale_y, pad_x, pad_y = expected
    assert transform.scale_x == pytest.approx(scale_x)
    assert transform.scale_y == pytest.approx(scale_y)
    assert (transform.pad_x, transform.pad_y) == (pad_x, pad_y)
    assert transform.model_shape == model_shape
    assert transform.input_shape == input_shape


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (((10, 10), (0, 0, 11, 10), (8, 8), "letterbox"), "crop_box"),
        (((10, 10), (5, 0, 5, 10), (8, 8), "letterbox"), "crop_box"),
        (((10, 10), None, (8, 8), "fit"), "resize_mode"),
        (((0, 10), None, (8, 8), "stretch"), "positive"),
    ],
)
def test_make_frame_transform_rejects(args, fragment):
    with pytest.raises(ValueError, match=fragment):
        make_frame_transform(*args)


@pytest.mark.parametrize(
    ("input_shape", "model_shape", "input_points", "model_points"),
    [
        # 4 -> 2 px: the boundary between input pixels 0 and 1 (x = 0.5) is model pixel 0's centre
        ((4, 4), (2, 2), [[0.5, 0.5], [2.5, 2.5], [0.0, 0.0]], [[0, 0], [1, 1], [-0.25, -0.25]]),
        # 2 -> 4 px: input pixel centres land between model pixels
        ((2, 2), (4, 4), [[0, 0], [1, 1], [-0.5, -0.5]], [[0.5, 0.5], [2.5, 2.5], [-0.5, -0.5]]),
    ],
)
def test_points_pixel_centre_convention(input_shape, model_shape, input_points, model_points):
    transform = make_frame_transform(input_shape, None, model_shape, "stretch")
    np.testing.assert_allclose(transform.points_to_model(np.array(input_points)), model_points)
    np.testing.assert_allclose(transform.points_to_input(np.array(model_points)), input_points)


def test_points_with_crop_and_padding():
    # 4x4 crop at (2, 1) of an 8x6 image into a 2x4 model grid: scale 0.5, pad_x 1
    transform = make_frame_transform((6, 8), (2, 1, 6, 5), (2, 4), "letterbox")
    assert (transform.scale_x, transform.pad_x, transform.pad_y) == (0.5, 1, 0)
    # input (2.5, 1.5) is the centre of the crop's top-left 2x2 block -> model pixel (1, 0)
    np.testing.assert_allclose(transform.points_to_model(np.array([[2.5, 1.5]])), [[1.0, 0.0]])


@settings(max_examples=80, deadline=None)
@given(
    height=st.integers(8, 700),
    width=st.integers(8, 700),
    model=st.sampled_from([(64, 64), (128, 96), (512, 512)]),
    mode=st.sampled_from(["letterbox", "stretch"]),
    crop_fraction=st.floats(0.3, 1.0),
    seed=st.integers(0, 1000),
)
def test_points_round_trip_exact(height, width, model, mode, crop_fraction, seed):
    rng = np.random.default_rng(seed)
    crop_w, crop_h = max(1, int(width * crop_fraction)), max(1, int(height * crop_fraction))
    x0, y0 = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
    transform = make_frame_transform(
        (height, width), (x0, y0, x0 + crop_w, y0 + crop_h), model, mode
    )
    points = rng.uniform(-1, [width, height], size=(20, 2))
    round_trip = transform.points_to_input(transform.points_to_model(points))
    np.testing.assert_allclose(round_trip, points, atol=1e-4)


def test_points_reject_bad_shape():
    transform = make_frame_transform((4, 4), None, (4, 4))
    with pytest.raises(ValueError, match=r"expected \(N, 2\)"):
        transform.points_to_model(np.zeros(3))


@pytest.mark.parametrize(
    ("input_shape", "crop_box", "model_shape", "mode", "model_labels", "expected"),
    [
        # 2x upsampling: each model pixel covers a 2x2 input block
        (
            (4, 4),
            None,
            (2, 2),
            "stretch",
            [[1, 2], [3, 4]],
            np.kron([[1, 2], [3, 4]], np.ones((2, 2))),
        ),
        # crop + letterbox padding: padded model columns (9) never appear, outside crop is 0
        (
            (6, 8),
            (2, 1, 6, 5),
            (2, 4),
            "letterbox",
            [[9, 1, 2, 9], [9, 3, 4, 9]],
            np.pad(np.kron([[1, 2], [3, 4]], np.ones((2, 2))), ((1, 1), (2, 2))),
        ),
        # 2x downsampling: input pixel 0 (model x = 0.5, a tie) takes model pixel 1
        ((2, 2), None, (4, 4), "stretch", np.arange(16).reshape(4, 4), [[5, 7], [13, 15]]),
    ],
)
def test_labels_to_input(input_shape, crop_box, model_shape, mode, model_labels, expected):
    transform = make_frame_transform(input_shape, crop_box, model_shape, mode)
    labels = transform.labels_to_input(np.asarray(model_labels, dtype=np.uint8))
    assert labels.shape == input_shape and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.asarray(expected, dtype=np.uint8))


def test_labels_to_input_agrees_with_points_to_model():
    """Every input pixel gets the label of the model pixel nearest its mapped centre."""
    transform = make_frame_transform((37, 53), (3, 5, 50, 33), (16, 24), "letterbox")
    model_labels = np.arange(16 * 24, dtype=np.int32).reshape(16, 24)
    labels = transform.labels_to_input(model_labels)
    x0, y0, x1, y1 = transform.crop_box
    ys, xs = np.mgrid[y0:y1, x0:x1]
    mapped = transform.points_to_model(np.stack([xs.ravel(), ys.ravel()], axis=1))
    nearest = np.floor(mapped + 0.5).astype(int)
    np.testing.assert_array_equal(
        labels[y0:y1, x0:x1].ravel(), model_labels[nearest[:, 1], nearest[:, 0]]
    )
    assert not labels[:y0].any() and not labels[:, x1:].any()


def test_probs_to_input_bilinear_is_exact_on_a_ramp():
    transform = make_frame_transform((30, 20), None, (12, 8), "stretch")
    model_x = np.tile(np.arange(8, dtype=np.float32), (2, 12, 1))  # (2, 12, 8) ramp in x
    probs = transform.probs_to_input(model_x)
    assert probs.shape == (2, 30, 20)
    expected_x = transform.points_to_model(np.stack([np.arange(20), np.zeros(20)], axis=1))[:, 0]
    interior = (expected_x >= 0) & (expected_x <= 7)  # bilinear clamps outside the grid
    np.testing.assert_allclose(probs[1, 5, interior], expected_x[interior], atol=1e-5)


def test_probs_to_input_zero_outside_crop():
    transform = make_frame_transform((10, 12), (2, 2, 10, 8), (6, 8), "letterbox")
    probs = transform.probs_to_input(np.full((6, 8), 0.5, np.float32))
    np.testing.assert_allclose(probs[2:8, 2:10], 0.5)
    assert probs[:2].sum() == 0 and probs[:, :2].sum() == 0 and probs[:, 10:].sum() == 0


def test_image_to_model_nearest_inverts_labels_to_input():
    transform = make_frame_transform((40, 60), (0, 10, 60, 40), (16, 32), "letterbox")
    model_labels = np.random.default_rng(3).integers(0, 3, (16, 32)).astype(np.uint8)
    rh, rw = transform.content_size
    model_labels[:, : transform.pad_x] = 0
    model_labels[:, transform.pad_x + rw :] = 0
    back = transform.image_to_model(transform.labels_to_input(model_labels), "nearest")
    np.testing.assert_array_equal(back, model_labels)
    mask = transform.image_to_model(np.ones((40, 60), bool), "nearest")
    assert mask.dtype == np.bool_ and mask.sum() == rh * rw


def test_image_to_model_rejects_bad_interpolation_and_shape():
    transform = make_frame_transform((4, 4), None, (4, 4))
    with pytest.raises(ValueError, match="interpolation"):
        transform.image_to_model(np.zeros((4, 4)), "bicubic-ish")
    with pytest.raises(ValueError, match="input grid"):
        transform.image_to_model(np.zeros((5, 4)), "linear")
    with pytest.raises(ValueError, match="model grid"):
        transform.labels_to_input(np.zeros((3, 4), np.uint8))


def _stripes_in_field(pad: int = 4) -> np.ndarray:
    """16x16 image: 0 outside, columns alternating 0.4 / 0.8 inside a centred 8x8 field."""
    image = np.zeros((16, 16), np.float32)
    image[pad:-pad, pad:-pad] = np.tile([0.4, 0.8], (8, 4))
    return image


@pytest.mark.parametrize(
    ("normalization", "inside_expected", "outside_expected"),
    [
        # field mean 0.6, std 0.2 -> (0.4, 0.8) -> (-1, 1); outside set to pad_value (-3)
        ("mask_zscore", (-1.0, 1.0), -3.0),
        # whole image: mean 0.25 * 0.6 = 0.15, E[x^2] = 0.25 * (0.16 + 0.64) / 2 = 0.1,
        # std sqrt(0.1 - 0.15**2) = 0.278388
        ("zscore", ((0.4 - 0.15) / 0.278388, (0.8 - 0.15) / 0.278388), -0.15 / 0.278388),
        # fixed mean 0.5, std 0.25
        ("fixed", (-0.4, 1.2), -2.0),
        ("minmax", (0.5, 1.0), 0.0),
    ],
)
def test_normalizations(normalization, inside_expected, outside_expected):
    spec = PreprocessSpec(
        input_size=(16, 16),
        crop_to_field=False,
        normalization=normalization,
        resize_mode="stretch",
        pad_value=-3.0,
    )
    net_input, transform, field = Preprocessor(spec)(_stripes_in_field())
    assert net_input.shape == (1, 1, 16, 16) and net_input.dtype == np.float32
    assert transform.crop_box == (0, 0, 16, 16)
    assert field.sum() == 64
    values = net_input[0, 0]
    np.testing.assert_allclose(values[4:12, 4:12:2], inside_expected[0], atol=1e-4)
    np.testing.assert_allclose(values[4:12, 5:12:2], inside_expected[1], atol=1e-4)
    np.testing.assert_allclose(values[:4], outside_expected, atol=1e-4)


def test_crop_to_field_and_letterbox_padding():
    spec = PreprocessSpec(input_size=(16, 32), crop_to_field=True, pad_value=-7.0)
    net_input, transform, _ = Preprocessor(spec)(_stripes_in_field())
    assert transform.crop_box == (4, 4, 12, 12)
    # 8x8 crop -> 16x16 content centred in a 16x32 grid
    assert (transform.pad_x, transform.pad_y, transform.scale_x) == (8, 0, 2.0)
    assert (net_input[0, 0, :, :8] == -7.0).all() and (net_input[0, 0, :, 24:] == -7.0).all()
    content = net_input[0, 0, :, 8:24]
    assert abs(float(content.mean())) < 0.1  # z-scored inside the field


def test_preprocessor_reuses_out_buffer_and_accepts_given_field():
    spec = PreprocessSpec(input_size=(16, 16), crop_to_field=False, resize_mode="stretch")
    buffer = np.empty((1, 1, 16, 16), np.float32)
    given_field = np.zeros((16, 16), bool)
    given_field[:8] = True
    net_input, _, field = Preprocessor(spec)(_stripes_in_field(), given_field, out=buffer)
    assert net_input is buffer
    np.testing.assert_array_equal(field, given_field)
    with pytest.raises(ValueError, match="out is"):
        Preprocessor(spec)(_stripes_in_field(), out=np.empty((1, 1, 8, 8), np.float32))


@pytest.mark.parametrize(
    "image",
    [np.zeros((8, 8), np.uint8), np.zeros((8,), np.float32), np.zeros((0, 4), np.float32)],
)
def test_preprocessor_rejects_bad_images(image):
    with pytest.raises(ValueError, match="expected a non-empty"):
        Preprocessor(PreprocessSpec(input_size=(16, 16)))(image)


def test_preprocessor_rejects_non_spec():
    with pytest.raises(TypeError, match="PreprocessSpec"):
        Preprocessor({"input_size": (16, 16)})


def test_all_dark_frame_falls_back_to_whole_image():
    net_input, transform, field = Preprocessor(PreprocessSpec(input_size=(16, 16)))(
        np.zeros((20, 20), np.float32)
    )
    assert not field.any()
    assert transform.crop_box == (0, 0, 20, 20)
    assert np.isfinite(net_input).all()


def test_exposed_field_mask_circle_with_noise_and_dark_wire():
    rng = np.random.default_rng(7)
    height, width, radius = 240, 320, 100
    ys, xs = np.mgrid[:height, :width]
    circle = (xs - 170) ** 2 + (ys - 115) ** 2 <= radius**2
    image = np.where(circle, 0.55, 0.0) + rng.normal(0, 0.02, (height, width))
    # salt noise in the shutter area and a dark wire crossing the field
    salt = rng.random((height, width)) < 0.002
    image[salt & ~circle] = 0.9
    image[110:113, 90:250] = 0.0
    image = np.clip(image, 0, 1).astype(np.float32)
    field = exposed_field_mask(image, threshold=0.05)
    intersection = np.logical_and(field, circle).sum()
    union = np.logical_or(field, circle).sum()
    assert intersection / union > 0.98
    assert field[111, 170]  # the dark wire is inside the field
    x0, y0, x1, y1 = mask_bounding_box(field)
    np.testing.assert_allclose([x0, y0, x1, y1], [70, 15, 271, 216], atol=2)


@pytest.mark.parametrize("threshold", [-0.1, 1.0])
def test_exposed_field_mask_rejects_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        exposed_field_mask(np.zeros((4, 4), np.float32), threshold)


def test_frame_transform_is_frozen():
    transform = make_frame_transform((4, 4), None, (4, 4))
    assert isinstance(transform, FrameTransform)
    with pytest.raises(AttributeError):
        transform.pad_x = 3


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 30),
    width=st.integers(1, 30),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
)
def test_fill_holes_matches_scipy(height, width, density, seed):
    mask = np.random.default_rng(seed).random((height, width)) < density
    np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))


def test_tiny_bright_spot_is_not_a_field():
    image = np.zeros((100, 100), np.float32)
    image[10:19, 10:19] = 0.8  # 81 px < 1 % of the frame
    assert not exposed_field_mask(image, 0.02).any()
    image[10:21, 10:21] = 0.8  # 121 px >= 1 %
    assert exposed_field_mask(image, 0.02).sum() == 121
    _, transform, field = Preprocessor(PreprocessSpec(input_size=(16, 16)))(image)
    assert transform.crop_box == (10, 10, 21, 21) and field.sum() == 121
