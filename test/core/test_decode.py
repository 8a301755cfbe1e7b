"""Tests of image decode/encode (core/decode.py): layouts, byte order, padding, errors."""

from __future__ import annotations

import array
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoro_perception.core.decode import (
    EncodedImage,
    ImageDecodeError,
    decode_image,
    decode_image_msg,
    encode_image,
    to_mono_float,
)

# A 2x3 test image; hand-written so expected layouts are obvious.
MONO8 = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
MONO16 = np.array([[0x0102, 0x0304, 0x0FFF], [0x1000, 0xABCD, 0x0001]], dtype=np.uint16)
RGB = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)


@pytest.mark.parametrize(
    ("encoding", "data", "step", "big", "expected"),
    [
        ("mono8", bytes([1, 2, 3, 4, 5, 6]), 3, 0, MONO8),
        # 2 padding bytes per row are skipped
        ("mono8", bytes([1, 2, 3, 99, 99, 4, 5, 6, 99, 99]), 5, 0, MONO8),
        ("8UC1", bytes([1, 2, 3, 4, 5, 6]), 3, 0, MONO8),
        # little endian: low byte first
        (
            "mono16",
            bytes([0x02, 0x01, 0x04, 0x03, 0xFF, 0x0F, 0x00, 0x10, 0xCD, 0xAB, 0x01, 0x00]),
            6,
            0,
            MONO16,
        ),
        # big endian: high byte first
        (
            "mono16",
            bytes([0x01, 0x02, 0x03, 0x04, 0x0F, 0xFF, 0x10, 0x00, 0xAB, 0xCD, 0x00, 0x01]),
            6,
            1,
            MONO16,
        ),
        # big endian with 1 padding byte per row (odd offsets: unaligned uint16)
        (
            "mono16",
            bytes([1, 2, 3, 4, 0x0F, 0xFF, 7, 0x10, 0, 0xAB, 0xCD, 0, 1, 7]),
            7,
            True,
            MONO16,
        ),
        ("16UC1", MONO16.astype("<u2").tobytes(), 6, 0, MONO16),
        ("rgb8", RGB.tobytes(), 9, 0, RGB),
        ("bgr8", RGB.tobytes(), 9, 0, RGB),  # returned in encoded order, no swap
        ("rgb8", np.pad(RGB.reshape(2, 9), ((0, 0), (0, 3))).tobytes(), 12, 0, RGB),
    ],
)
def test_decode_layouts(encoding, data, step, big, expected):
    image = decode_image(encoding, 2, 3, step, big, data)
    assert image.dtype == expected.dtype
    assert image.shape == expected.shape
    np.testing.assert_array_equal(image, expected)
    if expected.dtype == np.uint16:
        assert image.dtype.isnative


@pytest.mark.parametrize(
    "container",
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: array.array("B", b),
        lambda b: np.frombuffer(b, np.uint8),
    ],
)
def test_decode_accepts_every_buffer_type(container):
    image = decode_image("mono8", 2, 3, 3, 0, container(MONO8.tobytes()))
    np.testing.assert_array_equal(image, MONO8)


def test_decode_accepts_non_byte_array_array_and_ndarray():
    words = array.array("H", MONO16.ravel().tolist())  # native order words
    big = int(np.dtype(np.uint16).byteorder == ">")
    np.testing.assert_array_equal(decode_image("mono16", 2, 3, 6, big, words), MONO16)
    np.testing.assert_array_equal(decode_image("mono16", 2, 3, 6, big, MONO16.copy()), MONO16)


def test_mono8_exact_step_is_zero_copy():
    buffer = np.arange(12, dtype=np.uint8)
    image = decode_image("mono8", 3, 4, 4, 0, buffer)
    assert np.shares_memory(image, buffer)
    buffer[5] = 200  # row 1, column 1
    assert image[1, 1] == 200


def test_padded_rgb_and_native_mono16_are_views():
    padded = np.zeros(2 * 12, dtype=np.uint8)
    assert np.shares_memory(decode_image("rgb8", 2, 3, 12, 0, padded), padded)
    native = np.frombuffer(MONO16.tobytes(), np.uint8).copy()
    big = np.dtype(np.uint16).byteorder == ">"
    assert np.shares_memory(decode_image("mono16", 2, 3, 6, big, native), native)


@pytest.mark.parametrize(
    ("encoding", "height", "width", "step", "big", "nbytes", "fragment"),
    [
        ("mono8", 2, 3, 3, 0, 5, "truncated"),
        ("mono8", 2, 3, 3, 0, 7, "oversized"),
        ("mono16", 2, 3, 6, 0, 11, "truncated"),
        ("rgb8", 2, 3, 9, 0, 19, "oversized"),
        ("mono8", 0, 3, 3, 0, 0, "height=0"),
        ("mono8", 2, -1, 3, 0, 6, "width=-1"),
        ("mono8", 2, 3, 0, 0, 0, "step=0"),
        ("mono16", 2, 3, 5, 0, 10, "step=5"),  # shorter than 6-byte row
        ("rgb8", 2, 3, 8, 0, 16, "step=8"),
        ("yuv422", 2, 3, 6, 0, 12, "yuv422"),
        ("MONO8", 2, 3, 3, 0, 6, "MONO8"),
        ("mono8", 2, 3, 3, 2, 6, "is_bigendian=2"),
        ("mono8", 2.0, 3, 3, 0, 6, "height=2.0"),
    ],
)
def test_decode_errors_are_one_line_and_name_the_value(
    encoding, height, width, step, big, nbytes, fragment
):
    with pytest.raises(ImageDecodeError) as info:
        decode_image(encoding, height, width, step, big, bytes(nbytes))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_decode_rejects_non_buffer_data():
    with pytest.raises(ImageDecodeError, match="not a byte buffer"):
        decode_image("mono8", 1, 1, 1, 0, 3.5)


def test_decode_image_msg_duck_typed():
    msg = SimpleNamespace(
        encoding="mono8", height=2, width=3, step=3, is_bigendian=0, data=MONO8.tobytes()
    )
    np.testing.assert_array_equal(decode_image_msg(msg), MONO8)
    with pytest.raises(ImageDecodeError, match="lacks image fields"):
        decode_image_msg(SimpleNamespace(encoding="mono8"))


def test_encode_fields():
    encoded = encode_image(MONO16, "mono16")
    assert isinstance(encoded, EncodedImage)
    assert (encoded.height, encoded.width, encoded.step) == (2, 3, 6)
    assert encoded.data.dtype == np.uint8 and encoded.data.ndim == 1
    assert encoded.data.size == 12
    rgb = encode_image(RGB, "rgb8")
    assert rgb.step == 9 and rgb.is_bigendian is False


def test_encode_big_endian_input_is_written_native():
    big_input = MONO16.astype(">u2")
    encoded = encode_image(big_input, "mono16")
    decoded = decode_image(
        encoded.encoding,
        encoded.height,
        encoded.width,
        encoded.step,
        encoded.is_bigendian,
        encoded.data,
    )
    np.testing.assert_array_equal(decoded, MONO16)


@pytest.mark.parametrize(
    ("image", "encoding"),
    [
        (MONO16, "mono8"),
        (MONO8, "mono16"),
        (MONO8, "rgb8"),
        (np.zeros((2, 3, 4), np.uint8), "bgr8"),
        (np.zeros((0, 3), np.uint8), "mono8"),
    ],
)
def test_encode_rejects_wrong_array(image, encoding):
    with pytest.raises(ImageDecodeError):
        encode_image(image, encoding)


@pytest.mark.parametrize(
    ("image", "encoding", "bit_depth", "expected"),
    [
        (np.array([[0, 255]], np.uint8), "mono8", None, [[0.0, 1.0]]),
        # max 4095 -> auto 12 bit
        (np.array([[0, 4095]], np.uint16), "mono16", None, [[0.0, 1.0]]),
        (np.array([[0, 2048]], np.uint16), "mono16", None, [[0.0, 2048 / 4095]]),
        # max 4096 -> auto 16 bit
        (np.array([[0, 4096]], np.uint16), "mono16", None, [[0.0, 4096 / 65535]]),
        (np.array([[0, 1000]], np.uint16), "mono16", 16, [[0.0, 1000 / 65535]]),
        # values above the declared depth are clipped
        (np.array([[5000, 1023]], np.uint16), "mono16", 10, [[1.0, 1.0]]),
        (np.array([[[255, 0, 0]]], np.uint8), "rgb8", None, [[0.299]]),
        (np.array([[[255, 0, 0]]], np.uint8), "bgr8", None, [[0.114]]),
    ],
)
def test_to_mono_float(image, encoding, bit_depth, expected):
    grey = to_mono_float(image, encoding, bit_depth)
    assert grey.dtype == np.float32
    assert grey.shape == image.shape[:2]
    np.testing.assert_allclose(grey, expected, atol=3e-3)


@pytest.mark.parametrize("bit_depth", [0, 17, 12.0, True])
def test_to_mono_float_rejects_bad_bit_depth(bit_depth):
    with pytest.raises(ValueError, match="bit_depth"):
        to_mono_float(MONO16, "mono16", bit_depth)


def test_to_mono_float_rejects_dtype_mismatch():
    with pytest.raises(ImageDecodeError, match="mono8 image must be uint8"):
        to_mono_float(MONO16, "mono8")


@st.composite
def images_and_encodings(draw):
    encoding = draw(st.sampled_from(["mono8", "mono16", "rgb8", "bgr8"]))
    height = draw(st.integers(1, 9))
    width = draw(st.integers(1, 9))
    shape = (height, width, 3) if encoding in ("rgb8", "bgr8") else (height, width)
    dtype = np.uint16 if encoding == "mono16" else np.uint8
    seed = draw(st.integers(0, 2**31 - 1))
    image = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    return image, encoding, draw(st.integers(0, 5)), draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(images_and_encodings())
def test_round_trip_with_padding_and_byte_order(case):
    """encode -> re-pad rows (and swap bytes) -> decode gives back the original pixels."""
    image, encoding, padding, swap = case
    encoded = encode_image(image, encoding)
    rows = encoded.data.reshape(encoded.height, encoded.step)
    big = encoded.is_bigendian
    if swap and encoding == "mono16":
        rows = rows.reshape(encoded.height, -1, 2)[:, :, ::-1].reshape(encoded.height, -1)
        big = not big
    padded = np.pad(rows, ((0, 0), (0, padding)), constant_values=77)
    decoded = decode_image(
        encoding, encoded.height, encoded.width, encoded.step + padding, big, padded.tobytes()
    )
    np.testing.assert_array_equal(decoded, image)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 40))
def test_any_wrong_length_is_rejected(height, width, nbytes):
    if nbytes == height * width:
        nbytes += 1
    with pytest.raises(ImageDecodeError):
        decode_image("mono8", height, width, width, 0, bytes(nbytes))


def test_decode_rejects_non_contiguous_buffers():
    strided = np.arange(24, dtype=np.uint8)[::2]
    with pytest.raises(ImageDecodeError, match="non-contiguous memoryview"):
        decode_image("mono8", 3, 4, 4, 0, memoryview(strided))
    with pytest.raises(ImageDecodeError, match="non-contiguous ndarray"):
        decode_image("mono16", 2, 3, 6, 0, np.arange(12, dtype=np.uint16)[::2])
