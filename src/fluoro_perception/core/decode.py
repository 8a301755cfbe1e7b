"""Image message <-> numpy conversion (the pipeline's *encoder* stage input side).

Works on the raw fields of a ``sensor_msgs/Image`` (``encoding``, ``height``, ``width``,
``step``, ``is_bigendian``, ``data``) so the same code serves rclpy messages, rosbags
messages and plain test data. No rclpy import.

Supported encodings: ``mono8``, ``mono16``, ``rgb8``, ``bgr8`` (plus the OpenCV-style
aliases ``8UC1`` = mono8 and ``16UC1`` = mono16). Colour images are returned in the
channel order they were encoded in (``rgb8`` -> RGB, ``bgr8`` -> BGR); convert with
:func:`to_mono_float` when a grey image is wanted.
"""

from __future__ import annotations

import array
import functools
import sys
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

#: encoding -> (channels, bytes per channel)
_LAYOUTS: dict[str, tuple[int, int]] = {
    "mono8": (1, 1),
    "mono16": (1, 2),
    "rgb8": (3, 1),
    "bgr8": (3, 1),
}
_ALIASES: dict[str, str] = {"8UC1": "mono8", "16UC1": "mono16"}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)
_HOST_IS_BIGENDIAN = sys.byteorder == "big"


class ImageDecodeError(ValueError):
    """An image buffer or its description does not fit a supported layout (one-line message)."""


@dataclass(frozen=True)
class EncodedImage:
    """The raw fields of a ``sensor_msgs/Image`` (without the header).

    Attributes
    ----------
    encoding : str
        One of :data:`SUPPORTED_ENCODINGS`.
    height, width : int
        Image size [px].
    step : int
        Bytes per row (>= width * channels * bytes per channel).
    is_bigendian : bool
        Byte order of multi-byte samples in ``data``.
    data : np.ndarray
        1-D uint8 buffer of ``step * height`` bytes.
    """

    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: bool
    data: np.ndarray


def normalize_encoding(encoding: str) -> str:
    """Return the canonical encoding name or raise :class:`ImageDecodeError`."""
    if not isinstance(encoding, str):
        raise ImageDecodeError(
            f"encoding={encoding!r} is not a string; expected one of {SUPPORTED_ENCODINGS}"
        )
    canonical = _ALIASES.get(encoding, encoding)
    if canonical not in _LAYOUTS:
        raise ImageDecodeError(
            f"encoding={encoding!r} is not supported; expected one of {SUPPORTED_ENCODINGS} "
            "(convert the image upstream)"
        )
    return canonical


def _as_uint8_buffer(data: Any) -> np.ndarray:
    """View any byte container as a flat uint8 array without copying when possible."""
    if isinstance(data, np.ndarray):
        if data.dtype == np.uint8 and data.ndim == 1:
            return data
        if not data.flags.c_contiguous:
            raise ImageDecodeError(
                f"data is a non-contiguous ndarray {data.dtype}{data.shape}; expected a 1-D uint8 "
                "buffer (pass np.ascontiguousarray(data))"
            )
        return data.reshape(-1).view(np.uint8)
    if isinstance(data, array.array):
        # array.array('B') is what rclpy gives for uint8[]; other typecodes are re-viewed as bytes
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if isinstance(data, bytes | bytearray):
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, memoryview):
        if not data.c_contiguous:
            raise ImageDecodeError(
                "data is a non-contiguous memoryview; expected a contiguous byte buffer "
                "(pass bytes(data))"
            )
        return np.frombuffer(data.cast("B") if data.format != "B" else data, dtype=np.uint8)
    if isinstance(data, list | tuple):
        # rare (hand-built messages); a copy is unavoidable
        try:
            return np.asarray(data, dtype=np.uint8)
        except (ValueError, OverflowError) as exc:
            raise ImageDecodeError(f"data list cannot be read as uint8 bytes ({exc})") from None
    raise ImageDecodeError(
        f"data of type {type(data).__name__} is not a byte buffer; expected bytes, bytearray, "
        "memoryview, array.array or np.ndarray"
    )


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ImageDecodeError(f"{name}={value!r} is not an integer; expected an int > 0")
    if value <= 0:
        raise ImageDecodeError(f"{name}={value}; expected > 0 (empty images cannot be decoded)")
    return int(value)


def decode_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool | int,
    data: Any,
) -> np.ndarray:
    """Decode raw ``sensor_msgs/Image`` fields into a numpy image.

    Parameters
    ----------
    encoding : str
        ``mono8``, ``mono16``, ``rgb8`` or ``bgr8`` (``8UC1``/``16UC1`` accepted).
    height, width : int
        Image size [px], > 0.
    step : int
        Row length in bytes, >= ``width * channels * bytes_per_channel``; any padding at
        the end of rows is skipped.
    is_bigendian : bool or int
        Byte order of ``mono16`` samples (0/1 as in the message, or a bool).
    data : bytes, bytearray, memoryview, array.array or np.ndarray
        Exactly ``step * height`` bytes.

    Returns
    -------
    np.ndarray
        ``mono8`` -> ``(H, W)`` uint8; ``mono16`` -> ``(H, W)`` uint16 in the host's byte
        order; ``rgb8``/``bgr8`` -> ``(H, W, 3)`` uint8 in the encoded channel order.
        The result is a view of ``data`` (no copy) except for ``mono16`` whose byte order
        differs from the host's; a view of an immutable buffer (``bytes``) is read-only,
        so copy before writing into it.

    Raises
    ------
    ImageDecodeError
        On an unknown encoding, non-positive sizes, a ``step`` too small for the width, or
        a buffer whose length is not ``step * height``.
    """
    canonical = normalize_encoding(encoding)
    height = _check_positive_int("height", height)
    width = _check_positive_int("width", width)
    step = _check_positive_int("step", step)
    if isinstance(is_bigendian, bool | int | np.integer) and int(is_bigendian) in (0, 1):
        big_endian = bool(is_bigendian)
    else:
        raise ImageDecodeError(f"is_bigendian={is_bigendian!r}; expected 0/1 or a bool")
    channels, sample_bytes = _LAYOUTS[canonical]
    row_bytes = width * channels * sample_bytes
    if step < row_bytes:
        raise ImageDecodeError(
            f"step={step} bytes is shorter than one {canonical} row of width {width} "
            f"({row_bytes} bytes); fix step or width"
        )
    flat = _as_uint8_buffer(data)
    expected_bytes = step * height
    if flat.size != expected_bytes:
        kind = "truncated" if flat.size < expected_bytes else "oversized"
        raise ImageDecodeError(
            f"{canonical} data is {kind}: {flat.size} bytes, expected step*height = "
            f"{step}*{height} = {expected_bytes}"
        )
    rows = flat.reshape(height, step)[:, :row_bytes]  # (H, row_bytes) view, padding dropped
    if canonical == "mono16":
        wire_dtype = np.dtype(">u2" if big_endian else "<u2")
        image = rows.view(wire_dtype)  # (H, W) view; the last axis is contiguous
        if big_endian != _HOST_IS_BIGENDIAN:
            image = image.astype(np.uint16)  # byte swap into native order (copy)
        return image
    if channels == 3:
        return rows.reshape(height, width, 3)  # (H, W, 3) view
    return rows


@functools.cache
def _cv_bridge() -> Any:
    """A shared ``cv_bridge.CvBridge`` or None where cv_bridge is not installed (PyPI envs)."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    return CvBridge()


def decode_image_msg(msg: Any) -> np.ndarray:
    """Decode any object with ``sensor_msgs/Image`` attributes (rclpy or rosbags message).

    Uses ``cv_bridge`` (passthrough) for genuine rclpy ``sensor_msgs`` messages when it is
    importable, otherwise :func:`decode_image`. Output as :func:`decode_image`.
    """
    required = ("encoding", "height", "width", "step", "is_bigendian", "data")
    missing = [name for name in required if not hasattr(msg, name)]
    if missing:
        raise ImageDecodeError(
            f"{type(msg).__name__} lacks image fields {missing}; expected a sensor_msgs/Image"
        )
    canonical = normalize_encoding(msg.encoding)
    bridge = _cv_bridge() if type(msg).__module__.startswith("sensor_msgs") else None
    if bridge is not None:
        image = bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")
        return image.astype(np.uint16, copy=False) if canonical == "mono16" else image
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


def encode_image(image: np.ndarray, encoding: str) -> EncodedImage:
    """Encode a numpy image into ``sensor_msgs/Image`` fields (no row padding).

    Parameters
    ----------
    image : np.ndarray
        ``(H, W)`` uint8 for ``mono8``, ``(H, W)`` uint16 for ``mono16``, ``(H, W, 3)``
        uint8 for ``rgb8``/``bgr8`` (channels already in that order).
    encoding : str
        Target encoding.

    Returns
    -------
    EncodedImage
        ``mono16`` data is written in the host byte order and flagged accordingly.
    """
    canonical = normalize_encoding(encoding)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image is {type(image).__name__}; expected a numpy array")
    channels, sample_bytes = _LAYOUTS[canonical]
    expected_dtype = np.uint16 if sample_bytes == 2 else np.uint8
    expected_ndim = 2 if channels == 1 else 3
    # any byte order is accepted (a '>u2' array is swapped to native below)
    dtype_fits = image.dtype.kind == "u" and image.dtype.itemsize == sample_bytes
    if not dtype_fits or image.ndim != expected_ndim or (channels == 3 and image.shape[2] != 3):
        shape_text = "(H, W)" if channels == 1 else "(H, W, 3)"
        raise ImageDecodeError(
            f"{canonical} needs a {shape_text} {np.dtype(expected_dtype).name} array; got "
            f"{image.dtype}{image.shape} (convert with astype or cv2.cvtColor)"
        )
    height, width = int(image.shape[0]), int(image.shape[1])
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"image shape {image.shape} is empty; expected height, width > 0")
    native = np.ascontiguousarray(image, dtype=expected_dtype)
    data = native.reshape(-1).view(np.uint8)  # (H*W*C*bytes,) flat view
    return EncodedImage(
        encoding=canonical,
        height=height,
        width=width,
        step=width * channels * sample_bytes,
        is_bigendian=_HOST_IS_BIGENDIAN if sample_bytes == 2 else False,
        data=data,
    )


def to_mono_float(image: np.ndarray, encoding: str, bit_depth: int | None = None) -> np.ndarray:
    """Convert a decoded image to a grey ``(H, W)`` float32 image in ``[0, 1]``.

    Parameters
    ----------
    image : np.ndarray
        Output of :func:`decode_image` for ``encoding``.
    encoding : str
        Encoding of ``image``.
    bit_depth : int or None
        Significant bits of ``mono16`` data (1..16); samples are divided by
        ``2**bit_depth - 1`` and clipped. ``None`` auto-detects per frame: a maximum
        <= 4095 is read as 12-bit detector data, anything larger as 16-bit. Set it
        explicitly when the detector's depth is known (a dark 16-bit frame would
        otherwise be read as 12-bit). Ignored for 8-bit encodings.

    Returns
    -------
    np.ndarray
        ``(H, W)`` float32 in ``[0, 1]``; colour is converted with ITU-R BT.601 luma
        weights (``cv2.cvtColor``).
    """
    canonical = normalize_encoding(encoding)
    if bit_depth is not None and (
        isinstance(bit_depth, bool) or not isinstance(bit_depth, int) or not 1 <= bit_depth <= 16
    ):
        raise ValueError(f"bit_depth={bit_depth!r}; expected an int in 1..16 or None (auto)")
    channels, sample_bytes = _LAYOUTS[canonical]
    expected_dtype = np.uint16 if sample_bytes == 2 else np.uint8
    expected_ndim = 2 if channels == 1 else 3
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != expected_dtype
        or image.ndim != expected_ndim
    ):
        got = (
            f"{image.dtype}{image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        )
        raise ImageDecodeError(
            f"{canonical} image must be {np.dtype(expected_dtype).name} with {expected_ndim} dims; "
            f"got {got}"
        )
    if channels == 3:
        code = cv2.COLOR_RGB2GRAY if canonical == "rgb8" else cv2.COLOR_BGR2GRAY
        grey = cv2.cvtColor(np.ascontiguousarray(image), code)  # (H, W) uint8
        return grey.astype(np.float32) * np.float32(1.0 / 255.0)
    if sample_bytes == 1:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    if bit_depth is None:
        bit_depth = 12 if int(image.max()) <= 4095 else 16
    full_scale = np.float32(1.0 / float((1 << bit_depth) - 1))
    grey = image.astype(np.float32) * full_scale
    np.clip(grey, 0.0, 1.0, out=grey)
    return grey
