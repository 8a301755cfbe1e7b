"""Frame sources for ``fluoro-perception infer``: image folders, video files and rosbags.

Every source yields :class:`SourceFrame` ``(frame_name, image, encoding, stamp_ns)`` with
``image`` as :func:`~fluoro_perception.core.decode.decode_image` returns it (``(H, W)``
uint8 / uint16 or ``(H, W, 3)`` uint8), ready for
:meth:`~fluoro_perception.core.pipeline.PerceptionPipeline.process`.

Unreadable *items* (a corrupt PNG in a folder, an undecodable message in a bag, a video
that ends early) are skipped: each one is counted in :attr:`FrameSource.skipped`
(reason -> count), described in :attr:`FrameSource.skip_messages` and listed with its
frame name and stage in :attr:`FrameSource.skipped_items`, never raised. An
unusable *input* (missing path, unknown kind, a bag that cannot be opened, a topic that
is not in the bag) raises ``ValueError`` / ``FileNotFoundError`` with one line.

Decoding uses OpenCV (``cv2.imread`` for PNG, 8/16-bit TIFF, JPEG, BMP;
``cv2.VideoCapture`` for video) and :mod:`fluoro_perception.bagio` for rosbag2.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from fluoro_perception.bagio import IMAGE_TOPIC, IMAGE_TYPE, STORAGE_SUFFIXES, BagError, BagReader

#: Image file suffixes read from a folder (lower case).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
#: Video file suffixes opened with ``cv2.VideoCapture`` (lower case).
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".webm")
#: Stamp spacing of frames without their own time (folders, videos without timestamps) [Hz].
DEFAULT_FPS = 15.0
_NS_PER_S = 1_000_000_000


class SkippedItem(NamedTuple):
    """Input item(s) a source could not turn into a frame.

    Attributes
    ----------
    frame_name : str or None
        The name the frame would have had; None for unnamed groups (the unread end of
        a damaged bag, messages the bag reader dropped, frames a video lacks).
    stage : str
        ``"read"`` (the bytes could not be read) or ``"decode"`` (read, but not an image
        the pipeline takes); the stages of ``errors.jsonl``.
    reason : str
        Short reason, the key of :attr:`FrameSource.skipped`.
    message : str
        One line naming the file or frame and what went wrong.
    count : int
        Items this entry stands for (1 for a named frame).
    """

    frame_name: str | None
    stage: str
    reason: str
    message: str
    count: int


class SourceFrame(NamedTuple):
    """One decoded input frame.

    Attributes
    ----------
    frame_name : str
        File stem (folders), ``frame_<index>`` (videos) or the header stamp in ns (bags);
        unique within a source, used to name mask files.
    image : np.ndarray
        ``(H, W)`` uint8 / uint16 or ``(H, W, 3)`` uint8.
    encoding : str
        ``mono8``, ``mono16``, ``bgr8`` or ``rgb8`` (ROS ``sensor_msgs/Image`` names).
    stamp_ns : int
        Acquisition time [ns]: the header stamp (bags), the container's timestamp
        (videos) or ``index / fps`` (folders).
    """

    frame_name: str
    image: np.ndarray
    encoding: str
    stamp_ns: int


def _check_fps(fps: float) -> float:
    value = float(fps)
    if not value > 0.0 or not np.isfinite(value):
        raise ValueError(f"fps={fps!r}; expected a finite frame rate > 0 [Hz] (e.g. 15)")
    return value


def image_encoding(image: np.ndarray) -> tuple[np.ndarray, str]:
    """Bring an ``cv2.imread(..., IMREAD_UNCHANGED)`` array into a pipeline encoding.

    Grey uint8 -> ``mono8``; grey uint16 -> ``mono16``; 3-channel uint8 -> ``bgr8``
    (OpenCV's order); 4-channel drops alpha; colour uint16 is converted to grey
    ``mono16`` (fluoroscopy is grey; there is no 16-bit colour encoding in the pipeline).

    Raises
    ------
    ValueError
        Other dtypes (float TIFF, int32) or shapes, naming what was found.
    """
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype == np.uint8:
        if image.ndim == 2:
            return image, "mono8"
        if image.ndim == 3 and image.shape[2] == 3:
            return np.ascontiguousarray(image), "bgr8"
    if image.dtype == np.uint16:
        if image.ndim == 3 and image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if image.ndim == 2:
            return image, "mono16"
    raise ValueError(
        f"image is {image.dtype}{image.shape}; expected grey uint8/uint16 or 3-channel uint8 "
        "(convert float or 32-bit images to 16-bit first)"
    )


class FrameSource(ABC):
    """Base of the frame sources: iteration, skip accounting, context management.

    Attributes
    ----------
    path : Path
        The input.
    skipped : dict[str, int]
        Reason -> number of items skipped for it.
    skip_messages : list[str]
        One line per skipped item (or group of items, for bags), in order.
    skipped_items : list[SkippedItem]
        The same entries with frame name, stage and count.
    """

    kind = "source"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.skipped: dict[str, int] = {}
        self.skip_messages: list[str] = []
        self.skipped_items: list[SkippedItem] = []
        self.closed = False

    def _skip(
        self,
        reason: str,
        message: str,
        count: int = 1,
        *,
        frame_name: str | None = None,
        stage: str = "decode",
    ) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count
        self.skip_messages.append(message)
        self.skipped_items.append(SkippedItem(frame_name, stage, reason, message, count))

    @property
    def num_skipped(self) -> int:
        """Total number of skipped items."""
        return sum(self.skipped.values())

    def expected_frames(self) -> int | None:
        """Number of frames the input announces (progress bars), None if unknown."""
        return None

    @abstractmethod
    def __iter__(self) -> Iterator[SourceFrame]:
        """Yield the readable frames in order, counting the skipped ones."""

    def close(self) -> None:
        """Release file handles (idempotent); subclasses holding handles extend it."""
        self.closed = True

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ImageFolderSource(FrameSource):
    """Every image file (by suffix, see :data:`IMAGE_SUFFIXES`) directly in a folder.

    Files are read in name order; stamps are ``index / fps``. Two files with the same
    stem (``a.png``, ``a.tif``) are named ``a_png``, ``a_tif`` so their masks differ.

    Parameters
    ----------
    path : str or Path
        Folder.
    fps : float
        Frame rate used for the stamps [Hz] (tracking needs increasing stamps).
    """

    kind = "image folder"

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS) -> None:
        super().__init__(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"image folder {self.path} does not exist")
        self.fps = _check_fps(fps)
        self.files = sorted(
            p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.files:
            raise ValueError(
                f"folder {self.path} holds no image files; expected {'/'.join(IMAGE_SUFFIXES)} "
                "files, a video file or a rosbag2"
            )
        stem_counts: dict[str, int] = {}
        for file in self.files:
            stem_counts[file.stem] = stem_counts.get(file.stem, 0) + 1
        self.frame_names = [
            f"{f.stem}_{f.suffix.lstrip('.').lower()}" if stem_counts[f.stem] > 1 else f.stem
            for f in self.files
        ]

    def expected_frames(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[SourceFrame]:
        period_ns = _NS_PER_S / self.fps
        for index, (file, name) in enumerate(zip(self.files, self.frame_names, strict=True)):
            # imdecode of the bytes rather than imread: imread cannot report why it failed
            # and some OpenCV builds print warnings for non-ASCII paths
            try:
                data = np.fromfile(file, dtype=np.uint8)
            except OSError as exc:
                self._skip(
                    "unreadable file",
                    f"{file}: cannot read ({exc.strerror or exc})",
                    frame_name=name,
                    stage="read",
                )
                continue
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
            if image is None or image.size == 0:
                what = "an empty file" if not data.size else "not a decodable image"
                self._skip("undecodable image", f"{file}: {what}", frame_name=name)
                continue
            try:
                image, encoding = image_encoding(image)
            except ValueError as exc:
                self._skip("unsupported image", f"{file}: {exc}", frame_name=name)
                continue
            yield SourceFrame(name, image, encoding, round(index * period_ns))


class VideoSource(FrameSource):
    """Frames of a video file read with ``cv2.VideoCapture`` (delivered as ``bgr8``).

    Stamps come from the container (``CAP_PROP_POS_MSEC``) while they increase, else
    ``index / fps``. A video that ends before the frame count its header announces is
    reported as skipped frames.
    """

    kind = "video"

    def __init__(self, path: str | Path, fps: float | None = None) -> None:
        super().__init__(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video {self.path} does not exist")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            self._capture.release()
            raise ValueError(
                f"video {self.path} cannot be opened by OpenCV; expected a readable "
                f"{'/'.join(VIDEO_SUFFIXES)} file"
            )
        container_fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = _check_fps(fps if fps is not None else (container_fps or DEFAULT_FPS))
        self._frame_count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def expected_frames(self) -> int | None:
        return self._frame_count or None

    def __iter__(self) -> Iterator[SourceFrame]:
        period_ns = _NS_PER_S / self.fps
        index = 0
        last_stamp = -1
        while True:
            ok, image = self._capture.read()
            if not ok or image is None:
                break
            position_ms = float(self._capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
            stamp = round(position_ms * 1e6)
            if stamp <= last_stamp:
                stamp = round(index * period_ns)
            last_stamp = max(stamp, last_stamp + 1)
            name = f"frame_{index:06d}"
            try:
                image, encoding = image_encoding(image)
            except ValueError as exc:
                self._skip(
                    "unsupported image", f"{self.path} frame {index}: {exc}", frame_name=name
                )
            else:
                yield SourceFrame(name, image, encoding, last_stamp)
            index += 1
        if self._frame_count and index < self._frame_count:
            self._skip(
                "video ended early",
                f"{self.path}: read {index} of the {self._frame_count} frames its header "
                "announces (truncated or damaged file)",
                self._frame_count - index,
                stage="read",
            )

    def close(self) -> None:
        self._capture.release()
        super().close()


class BagSource(FrameSource):
    """Images of one topic of a rosbag2 (directory, ``.mcap`` or ``.db3``), via ``bagio``.

    Frame names are the header stamps in ns (``_1``, ``_2``... appended to repeats).
    Messages the reader drops (undecodable CDR or image buffers, storage damage) are
    taken over into :attr:`skipped`.
    """

    kind = "rosbag2"

    def __init__(self, path: str | Path, topic: str | None = None) -> None:
        super().__init__(path)
        self.topic = topic or IMAGE_TOPIC
        self._reader = BagReader(self.path).open()
        # fail now, with the bag's topic list, rather than on the first frame
        topics = self._reader.topics
        if topics.get(self.topic) != IMAGE_TYPE:
            self._reader.close()
            listing = ", ".join(f"{name} ({kind})" for name, kind in sorted(topics.items()))
            found = "is not in it" if self.topic not in topics else f"carries {topics[self.topic]}"
            raise BagError(
                f"bag {self.path}: topic {self.topic} {found}; expected a {IMAGE_TYPE} topic "
                f"(pass --topic), topics are: {listing or 'none'}"
            )

    def expected_frames(self) -> int:
        return self._reader.message_count(self.topic)

    def __iter__(self) -> Iterator[SourceFrame]:
        seen: dict[int, int] = {}
        images = self._reader.iter_images(self.topic)
        while True:
            try:
                bag_image = next(images)
            except StopIteration:
                break
            except BagError as exc:
                # a damaged chunk ends the readable part; the frames before it still count
                remaining = max(0, self.expected_frames() - sum(seen.values()))
                self._skip(
                    "damaged bag", f"{exc} ({remaining} frame(s) not read)", remaining, stage="read"
                )
                break
            repeats = seen.get(bag_image.stamp_ns, 0)
            seen[bag_image.stamp_ns] = repeats + 1
            name = str(bag_image.stamp_ns) + (f"_{repeats}" if repeats else "")
            yield SourceFrame(name, bag_image.image, bag_image.encoding, bag_image.stamp_ns)
        for reason, count in self._reader.skipped.items():
            self._skip(reason, f"{self.path}: {count} message(s) skipped ({reason})", count)
        self._reader.skipped.clear()

    def close(self) -> None:
        self._reader.close()
        super().close()


def is_bag(path: Path) -> bool:
    """True for a rosbag2 directory, a ``.mcap`` / ``.db3`` file, or a folder holding one."""
    if path.is_file():
        return path.suffix.lower() in STORAGE_SUFFIXES
    if not path.is_dir():
        return False
    if (path / "metadata.yaml").is_file():
        return True
    return any(p.suffix in STORAGE_SUFFIXES for p in path.iterdir() if p.is_file())


def open_source(
    path: str | Path, *, topic: str | None = None, fps: float = DEFAULT_FPS
) -> FrameSource:
    """Open the frame source that fits ``path``.

    Parameters
    ----------
    path : str or Path
        A folder of images, a video file, or a rosbag2 (directory, ``.mcap``, ``.db3``).
    topic : str or None
        Image topic of a bag (default :data:`~fluoro_perception.bagio.IMAGE_TOPIC`);
        an error for other inputs.
    fps : float
        Stamp spacing of folder frames and of videos without a frame rate [Hz].

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unknown kind of input, ``topic`` given for a non-bag, a bag that cannot be
        opened or lacks the topic (one line each).
    """
    source_path = Path(path)
    if not source_path.exists():
        raise FileNotFoundError(
            f"input {source_path} does not exist; expected an image folder, a video file or a "
            "rosbag2 (directory, .mcap or .db3)"
        )
    if is_bag(source_path):
        return BagSource(source_path, topic)
    if topic is not None:
        raise ValueError(
            f"--topic {topic} given but input {source_path} is not a rosbag2; drop --topic or "
            "pass a bag directory / .mcap / .db3 file"
        )
    if source_path.is_dir():
        return ImageFolderSource(source_path, fps)
    if source_path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(source_path)
    raise ValueError(
        f"input {source_path} has suffix {source_path.suffix!r}; expected an image folder, a "
        f"video ({'/'.join(VIDEO_SUFFIXES)}) or a rosbag2 ({'/'.join(STORAGE_SUFFIXES)})"
    )


__all__ = [
    "DEFAULT_FPS",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "BagSource",
    "FrameSource",
    "ImageFolderSource",
    "SkippedItem",
    "SourceFrame",
    "VideoSource",
    "image_encoding",
    "is_bag",
    "open_source",
]
