"""Property-based tests of the image decoder against malformed ``sensor_msgs/Image`` fields.

``test/core/test_decode.py`` already covers the hand-written layouts, the round trip with
padding and byte order, and wrong lengths of mono8. Here hypothesis draws every encoding
(supported, OpenCV aliases, float and other unsupported ones, random text) with one fault
at a time (step too small or padded, truncated or oversized data, zero, negative or huge
sizes, a bad byte-order flag, a non-buffer ``data``) and checks that the decoder either
returns exactly what an independent numpy reference reads, or raises
:class:`ImageDecodeError` with one line naming the faulty field - never another exception.

Float encodings (``32FC1``, ``64FC1``, ...) are REFUSED with a reason (the X-ray pipeline
takes integer detector data only); NaN/inf payloads therefore never reach the network.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoro_perception.core.decode import (
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    decode_image,
    to_mono_float,
)

#: Example counts (CI-sized; docs/reliability.md quotes them).
FUZZ_EXAMPLES = 300
FLOAT_EXAMPLES = 60
DEPTH_EXAMPLES = 80

#: encoding -> (channels, bytes per sample) as the sensor_msgs encodings define them
LAYOUTS = {
    "mono8": (1, 1),
    "8UC1": (1, 1),
    "mono16": (1, 2),
    "16UC1": (1, 2),
    "rgb8": (3, 1),
    "bgr8": (3, 1),
    # not supported by the decoder: refused with a reason
    "32FC1": (1, 4),
    "64FC1": (1, 8),
    "32FC3": (3, 4),
    "16SC1": (1, 2),
    "rgba8": (4, 1),
    "bayer_rggb8": (1, 1),
    "yuv422": (2, 1),
    "MONO8": (1, 1),
    "": (1, 1),
}
SUPPORTED = {"mono8", "8UC1", "mono16", "16UC1", "rgb8", "bgr8"}
FAULTS = (
    "none",
    "padded",
    "step_short",
    "truncated",
    "oversized",
    "zero_height",
    "zero_width",
    "negative_width",
    "huge_height",
    "huge_width",
    "huge_step",
    "bad_endian_flag",
    "float_height",
    "data_not_bytes",
)
#: the field a message must name for each fault
FAULT_FIELD = {
    "step_short": "step",
    "truncated": "truncated",
    "oversized": "oversized",
    "zero_height": "height",
    "zero_width": "width",
    "negative_width": "width",
    "huge_height": "data",
    "huge_width": "step",
    "huge_step": "data",
    "bad_endian_flag": "is_bigendian",
    "float_height": "height",
    "data_not_bytes": "data",
}


def reference_decode(encoding: str, height: int, width: int, step: int, big: bool, data: bytes):
    """Independent numpy reading of a well-formed message (row by row, no views)."""
    channels, sample_bytes = LAYOUTS[encoding]
    row_bytes = width * channels * sample_bytes
    rows = [data[r * step : r * step + row_bytes] for r in range(height)]
    if sample_bytes == 2:
        dtype = np.dtype(">u2" if big else "<u2")
        return np.array([np.frombuffer(row, dtype) for row in rows]).astype(np.uint16)
    pixels = np.array([np.frombuffer(row, np.uint8) for row in rows])
    return pixels.reshape(height, width, 3) if channels == 3 else pixels


@st.composite
def message_fields(draw):
    """Fields of one image message with at most one fault; returns (fields, fault)."""
    encoding = draw(st.sampled_from(sorted(LAYOUTS)))
    channels, sample_bytes = LAYOUTS[encoding]
    height, width = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    big = draw(st.booleans())
    fault = draw(st.sampled_from(FAULTS))
    step = width * channels * sample_bytes
    if fault == "padded":
        step += draw(st.integers(1, 9))
    if fault == "step_short":
        step -= draw(st.integers(1, step))  # 0 .. one row minus one byte
    size = step * height
    if fault == "truncated":
        size -= draw(st.integers(1, size))
    if fault == "oversized":
        size += draw(st.integers(1, 64))
    data = draw(st.binary(min_size=max(size, 0), max_size=max(size, 0)))
    fields = {
        "encoding": encoding,
        "height": height,
        "width": width,
        "step": step,
        "is_bigendian": big,
        "data": data,
    }
    if fault == "zero_height":
        fields["height"] = 0
    elif fault == "zero_width":
        fields["width"] = 0
    elif fault == "negative_width":
        fields["width"] = -draw(st.integers(1, 2**31))
    elif fault == "huge_height":
        fields["height"] = draw(st.sampled_from([2**31 - 1, 2**32, 2**63]))
    elif fault == "huge_width":
        fields["width"] = draw(st.sampled_from([2**31 - 1, 2**32, 2**63]))
    elif fault == "huge_step":
        fields["step"] = draw(st.sampled_from([2**31 - 1, 2**32, 2**63]))
    elif fault == "bad_endian_flag":
        fields["is_bigendian"] = draw(st.sampled_from([2, -1, 255, "yes", None]))
    elif fault == "float_height":
        fields["height"] = draw(st.sampled_from([float(height), float("nan"), float("inf")]))
    elif fault == "data_not_bytes":
        fields["data"] = draw(st.sampled_from([None, 3.5, "text", {"a": 1}]))
    return fields, fault


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(message_fields())
def test_any_message_decodes_exactly_or_fails_with_one_line_naming_the_field(case) -> None:
    fields, fault = case
    encoding = fields["encoding"]
    decodable = encoding in SUPPORTED and fault in ("none", "padded")
    if decodable:
        image = decode_image(**fields)
        expected = reference_decode(
            encoding,
            fields["height"],
            fields["width"],
            fields["step"],
            fields["is_bigendian"],
            fields["data"],
        )
        assert image.dtype == expected.dtype
        np.testing.assert_array_equal(image, expected)
        return
    with pytest.raises(ImageDecodeError) as raised:
        decode_image(**fields)
    message = str(raised.value)
    assert message and "\n" not in message
    if encoding not in SUPPORTED:
        # the encoding is checked first: the reason says which and what is supported
        assert repr(encoding) in message and "not supported" in message
    else:
        assert FAULT_FIELD[fault] in message, (fault, message)


@settings(max_examples=FLOAT_EXAMPLES, deadline=None)
@given(
    st.sampled_from(["32FC1", "64FC1", "32FC3", "16FC1"]),
    st.integers(1, 6),
    st.integers(1, 6),
    st.lists(
        st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.5, -1.0, 100.0]),
        min_size=1,
        max_size=4,
    ),
)
def test_float_images_with_nan_or_inf_are_refused_with_a_reason(
    encoding, height, width, specials
) -> None:
    channels = 3 if encoding.endswith("C3") else 1
    dtype = {"32F": np.float32, "64F": np.float64, "16F": np.float16}[encoding[:3]]
    pixels = np.resize(np.array(specials, dtype), height * width * channels)
    data = pixels.tobytes()
    with pytest.raises(ImageDecodeError, match="not supported.*convert the image upstream"):
        decode_image(encoding, height, width, width * channels * pixels.itemsize, False, data)


@settings(max_examples=DEPTH_EXAMPLES, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(0, 4095),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_12_bit_mono16_in_either_byte_order_is_scaled_by_4095(
    height, width, peak, big_endian, seed
) -> None:
    values = np.random.default_rng(seed).integers(0, peak + 1, (height, width), dtype=np.uint16)
    values.flat[0] = peak  # the frame's maximum is known
    data = values.astype(">u2" if big_endian else "<u2").tobytes()
    decoded = decode_image("mono16", height, width, width * 2, big_endian, data)
    np.testing.assert_array_equal(decoded, values)
    grey = to_mono_float(decoded, "mono16")  # auto depth: max <= 4095 -> 12-bit
    assert grey.dtype == np.float32 and np.isfinite(grey).all()
    np.testing.assert_allclose(grey, values / 4095.0, rtol=1e-6, atol=1e-7)


@settings(max_examples=DEPTH_EXAMPLES, deadline=None)
@given(st.integers(4096, 65535), st.integers(1, 12))
def test_values_above_12_bit_are_read_as_16_bit_and_stay_in_range(peak, bit_depth) -> None:
    values = np.array([[0, peak // 2, peak]], dtype=np.uint16)
    grey = to_mono_float(values, "mono16")
    np.testing.assert_allclose(grey, values / 65535.0, rtol=1e-6)
    # an explicit depth too small for the data clips to 1.0 instead of exceeding it
    clipped = to_mono_float(values, "mono16", bit_depth=bit_depth)
    assert clipped.max() == 1.0 and clipped.min() == 0.0


def test_supported_list_matches_the_documented_table() -> None:
    # the node's docs/ros_interface.md promises exactly these (plus the two aliases)
    assert set(SUPPORTED_ENCODINGS) == {"mono8", "mono16", "rgb8", "bgr8"}
