"""Reading images and ground truth from a rosbag2: :class:`BagReader`, :func:`open_bag`."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rosbags.highlevel import AnyReader, AnyReaderError

from fluoro_perception.bagio.formats import (
    GT_CENTERLINE_TOPIC,
    GT_GUIDEWIRE_MASK_TOPIC,
    GT_LABELS_TOPIC,
    GT_MARKERS_TOPIC,
    GT_STENT_MASK_TOPIC,
    GT_TIP_TOPIC,
    GT_TIPS_TOPIC,
    GT_TOPIC_TYPES,
    IMAGE_TOPIC,
    IMAGE_TYPE,
    PIXEL_SPACING_KEY,
    BagError,
    _one_line,
    get_bag_typestore,
)
from fluoro_perception.bagio.frames import BagFrame, BagGroundTruth, BagImage
from fluoro_perception.bagio.messages import _pose_position_yaw, stamp_to_ns
from fluoro_perception.bagio.storage import _resolve_bag_path, recover_truncated_mcap
from fluoro_perception.core.decode import ImageDecodeError, decode_image


class BagReader:
    """Read images and ground truth from a rosbag2 (directory, ``.mcap`` or ``.db3`` file).

    Parameters
    ----------
    path : str or Path
        rosbag2 directory (with ``metadata.yaml``), a directory whose metadata is lost but
        which holds one storage file, or a single ``.mcap`` / ``.db3`` file.

    Notes
    -----
    Problems with single messages (undecodable CDR, bad image buffers, a header stamp
    that cannot be paired) are counted in :attr:`skipped` (reason -> count) and the
    message is dropped; problems with the bag itself (missing or unreadable storage,
    corrupt chunk, missing topic, wrong message type) raise :class:`BagError` with one
    line naming the bag.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.storage_path, self.recovered_without_metadata = _resolve_bag_path(self.path)
        self.skipped: dict[str, int] = {}
        self._reader: AnyReader | None = None
        self._recovery_dir: tempfile.TemporaryDirectory | None = None
        #: True when the bag was a cut-off MCAP recording read through
        #: :func:`recover_truncated_mcap` (its incomplete last record is lost).
        self.recovered_truncated = False

    # context management -------------------------------------------------------------
    def _mcap_file(self) -> Path | None:
        if self.storage_path.is_file():
            return self.storage_path if self.storage_path.suffix == ".mcap" else None
        files = sorted(self.storage_path.glob("*.mcap"))
        return files[0] if len(files) == 1 else None

    def _open_recovered(self, cause: Exception) -> AnyReader | None:
        """A reader of the complete records of a cut-off MCAP, or None when not that case."""
        mcap_file = self._mcap_file()
        if mcap_file is None or "end magic" not in str(cause) and "footer" not in str(cause):
            return None
        self._recovery_dir = tempfile.TemporaryDirectory(prefix="fluoro_bag_recovered_")
        recovered = Path(self._recovery_dir.name) / mcap_file.name
        dropped_bytes = recover_truncated_mcap(mcap_file, recovered)
        reader = AnyReader([recovered], default_typestore=get_bag_typestore())
        reader.open()
        self.recovered_truncated = True
        self.skipped[f"truncated recording: last {dropped_bytes} bytes unreadable"] = 1
        # metadata.yaml (when the recorder wrote it) says how many messages there were
        try:
            document = yaml.safe_load((self.storage_path / "metadata.yaml").read_text("utf-8"))
            expected = int(document["rosbag2_bagfile_information"]["message_count"])
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
            expected = None
        recovered_count = sum(int(conn.msgcount) for conn in reader.connections)
        if expected is not None and expected > recovered_count:
            self.skipped["messages lost in truncated recording"] = expected - recovered_count
        return reader

    def open(self) -> BagReader:
        try:
            reader = AnyReader([self.storage_path], default_typestore=get_bag_typestore())
            reader.open()
        except (AnyReaderError, OSError) as exc:
            try:
                recovered = self._open_recovered(exc)
            except Exception:  # recovery is best effort: report the original problem
                recovered = None
            if recovered is not None:
                self._reader = recovered
                return self
            raise BagError(
                f"cannot open bag {self.path}: {_one_line(exc)} (if the recording was cut off, "
                "repair it with `mcap recover` / `ros2 bag reindex` or record again)"
            ) from exc
        except Exception as exc:  # rosbags surfaces damaged storage as many error types
            raise BagError(
                f"cannot open bag {self.path}: damaged storage ({type(exc).__name__}: "
                f"{_one_line(exc)})"
            ) from exc
        self._reader = reader
        return self

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()
        if self._recovery_dir is not None:
            self._recovery_dir.cleanup()
            self._recovery_dir = None

    def __enter__(self) -> BagReader:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        return False

    def _require_open(self) -> AnyReader:
        if self._reader is None:
            raise BagError(f"bag {self.path} is not open; use `with BagReader(path) as bag:`")
        return self._reader

    # metadata -----------------------------------------------------------------------
    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type of every topic in the bag."""
        reader = self._require_open()
        return {conn.topic: conn.msgtype for conn in reader.connections}

    def message_count(self, topic: str) -> int:
        """Number of messages on ``topic`` according to the bag's index (0 if absent)."""
        reader = self._require_open()
        return sum(conn.msgcount for conn in reader.connections if conn.topic == topic)

    @property
    def custom_data(self) -> dict[str, str]:
        """``metadata.yaml`` ``custom_data`` (str -> str); empty when the bag has none or
        is read without its metadata (a bare ``.mcap`` / ``.db3`` file).

        Read from ``metadata.yaml`` with PyYAML: rosbags 0.11's reader does not expose
        ``custom_data``. An unreadable metadata file counts as a skip and gives ``{}``.
        """
        self._require_open()
        metadata_path = self.storage_path / "metadata.yaml"
        if not self.storage_path.is_dir() or not metadata_path.is_file():
            return {}
        try:
            document = yaml.safe_load(metadata_path.read_text(encoding="utf-8"))
            custom = document["rosbag2_bagfile_information"].get("custom_data") or {}
        except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
            self._skip("metadata.yaml custom_data unreadable")
            return {}
        if not isinstance(custom, dict):
            self._skip("metadata.yaml custom_data unreadable")
            return {}
        return {str(key): str(value) for key, value in custom.items()}

    @property
    def pixel_spacing_m(self) -> float | None:
        """Pixel spacing [m/px] stored by :meth:`BagWriter.write_sim_frame` under
        :data:`PIXEL_SPACING_KEY`; None when absent or not a finite positive number."""
        text = self.custom_data.get(PIXEL_SPACING_KEY)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            self._skip("custom_data pixel spacing not a number")
            return None
        if not (math.isfinite(value) and value > 0.0):
            self._skip("custom_data pixel spacing not positive")
            return None
        return value

    @property
    def start_time_ns(self) -> int:
        return int(self._require_open().start_time)

    @property
    def end_time_ns(self) -> int:
        return int(self._require_open().end_time)

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def _connections(self, topic: str, expected_type: str | None) -> list[Any]:
        reader = self._require_open()
        connections = [conn for conn in reader.connections if conn.topic == topic]
        if not connections:
            listing = ", ".join(f"{name} ({kind})" for name, kind in sorted(self.topics.items()))
            raise BagError(f"bag {self.path} has no topic {topic}; topics are: {listing or 'none'}")
        if expected_type is not None:
            wrong = {conn.msgtype for conn in connections} - {expected_type}
            if wrong:
                raise BagError(
                    f"topic {topic} in bag {self.path} carries {sorted(wrong)}; expected "
                    f"{expected_type} (pick another topic)"
                )
        return connections

    # iteration ----------------------------------------------------------------------
    def _raw_messages(self, connections: list[Any]) -> Iterator[tuple[Any, int, bytes]]:
        """Yield raw messages, turning storage damage into one BagError."""
        reader = self._require_open()
        read = 0
        iterator = reader.messages(connections=connections)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                # rosbags skips records whose framing is damaged without an error; the
                # index still counts them, so the difference is reported as a skip
                expected = sum(int(conn.msgcount) for conn in connections)
                if read < expected:
                    self.skipped["lost in damaged storage"] = (
                        self.skipped.get("lost in damaged storage", 0) + expected - read
                    )
                return
            except Exception as exc:  # damaged chunk / truncated file, any storage backend
                raise BagError(
                    f"bag {self.path} is damaged after {read} messages "
                    f"({type(exc).__name__}: {_one_line(exc)}); the rest cannot be read"
                ) from exc
            read += 1
            yield item

    def _deserialize(self, raw: bytes, msgtype: str) -> Any | None:
        try:
            return self._require_open().deserialize(raw, msgtype)
        except Exception:  # rosbags raises several types for malformed CDR
            self._skip(f"undecodable {msgtype}")
            return None

    def iter_messages(
        self, topic: str, expected_type: str | None = None
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(log_time_ns, message)`` of ``topic`` in log-time order."""
        connections = self._connections(topic, expected_type)
        for conn, log_time_ns, raw in self._raw_messages(connections):
            message = self._deserialize(raw, conn.msgtype)
            if message is not None:
                yield int(log_time_ns), message

    def _to_bag_image(self, topic: str, log_time_ns: int, message: Any) -> BagImage | None:
        try:
            image = decode_image(
                message.encoding,
                message.height,
                message.width,
                message.step,
                message.is_bigendian,
                message.data,
            )
        except ImageDecodeError:
            self._skip(f"undecodable image on {topic}")
            return None
        return BagImage(
            topic=topic,
            stamp_ns=stamp_to_ns(message.header.stamp),
            log_time_ns=int(log_time_ns),
            frame_id=str(message.header.frame_id),
            encoding=str(message.encoding),
            image=image,
        )

    def iter_images(self, topic: str = IMAGE_TOPIC) -> Iterator[BagImage]:
        """Yield the decoded ``sensor_msgs/msg/Image`` messages of ``topic`` in log-time order."""
        for log_time_ns, message in self.iter_messages(topic, IMAGE_TYPE):
            bag_image = self._to_bag_image(topic, log_time_ns, message)
            if bag_image is not None:
                yield bag_image

    def iter_frames(
        self, image_topic: str = IMAGE_TOPIC, *, max_pending: int = 16
    ) -> Iterator[BagFrame]:
        """Yield images of ``image_topic`` with the ground truth of the same header stamp.

        Parameters
        ----------
        image_topic : str
            Image topic.
        max_pending : int
            Frames held while waiting for their GT messages; when more are waiting the
            oldest is yielded with whatever GT arrived (bags written by
            :class:`BagWriter` complete each frame at once).

        Notes
        -----
        Pairing is by header stamp, never by arrival order. GT topics that are absent
        from the bag leave the fields None; GT messages whose image never comes are
        counted in :attr:`skipped` under ``"ground truth without image"``.
        """
        # ~80 lines: one streaming loop; its two closures share the pending-frame state
        if max_pending < 1:
            raise ValueError(f"max_pending={max_pending}; expected >= 1")
        image_connections = self._connections(image_topic, IMAGE_TYPE)
        present = self.topics
        # markers duplicate the other GT topics for RViz; they are not parsed back
        gt_topics = [
            t
            for t, kind in GT_TOPIC_TYPES.items()
            if t != GT_MARKERS_TOPIC and present.get(t) == kind
        ]
        connections = list(image_connections)
        for topic in gt_topics:
            connections.extend(self._connections(topic, GT_TOPIC_TYPES[topic]))

        # stamp -> {"image": BagImage, topic: message}; "resolved" holds the GT topics that
        # arrived or can no longer arrive for that stamp (the topic moved on to a later
        # stamp: e.g. no primary-tip message on a frame without wires)
        pending: dict[int, dict[str, Any]] = {}

        def finish(stamp: int) -> BagFrame | None:
            entry = pending.pop(stamp)
            bag_image = entry.pop("image", None)
            entry.pop("resolved")
            if bag_image is None:
                self._skip("ground truth without image")
                return None
            truth = self._ground_truth(entry) if gt_topics else None
            return BagFrame(image=bag_image, ground_truth=truth)

        def complete(entry: dict[str, Any]) -> bool:
            return "image" in entry and len(entry["resolved"]) == len(gt_topics)

        for conn, log_time_ns, raw in self._raw_messages(connections):
            message = self._deserialize(raw, conn.msgtype)
            if message is None:
                continue
            if conn.topic == image_topic:
                value = self._to_bag_image(conn.topic, log_time_ns, message)
                if value is None:
                    continue
                key = "image"
            else:
                value, key = message, conn.topic
            stamp = stamp_to_ns(message.header.stamp)
            entry = pending.setdefault(stamp, {"resolved": set()})
            entry[key] = value
            if key != "image":
                for other_stamp, other in pending.items():
                    if other_stamp <= stamp:
                        other["resolved"].add(key)
            ready = [s for s, e in pending.items() if complete(e)]
            for ready_stamp in ready:
                frame = finish(ready_stamp)
                if frame is not None:
                    yield frame
            while len(pending) > max_pending:
                frame = finish(next(iter(pending)))
                if frame is not None:
                    yield frame
        for stamp in sorted(pending):
            frame = finish(stamp)
            if frame is not None:
                yield frame

    def _ground_truth(self, entry: dict[str, Any]) -> BagGroundTruth:
        def image_of(topic: str) -> np.ndarray | None:
            message = entry.get(topic)
            if message is None:
                return None
            bag_image = self._to_bag_image(topic, 0, message)
            return None if bag_image is None else bag_image.image

        tip_position_m = tip_direction_rad = None
        if GT_TIP_TOPIC in entry:
            tip_position_m, tip_direction_rad = _pose_position_yaw(entry[GT_TIP_TOPIC].pose)
        tips_m = tip_directions = None
        if GT_TIPS_TOPIC in entry:
            parsed = [_pose_position_yaw(p) for p in entry[GT_TIPS_TOPIC].poses]
            tips_m = np.array([p for p, _ in parsed], dtype=np.float64).reshape(-1, 3)
            tip_directions = np.array([yaw for _, yaw in parsed], dtype=np.float64)
        centerline_m = None
        if GT_CENTERLINE_TOPIC in entry:
            centerline_m = np.array(
                [_pose_position_yaw(p.pose)[0] for p in entry[GT_CENTERLINE_TOPIC].poses],
                dtype=np.float64,
            ).reshape(-1, 3)
        return BagGroundTruth(
            guidewire_mask=image_of(GT_GUIDEWIRE_MASK_TOPIC),
            stent_mask=image_of(GT_STENT_MASK_TOPIC),
            labels=image_of(GT_LABELS_TOPIC),
            tip_position_m=tip_position_m,
            tip_direction_rad=tip_direction_rad,
            tips_m=tips_m,
            tip_directions_rad=tip_directions,
            centerline_m=centerline_m,
        )


def open_bag(path: str | Path) -> BagReader:
    """Open a bag for reading (also usable as ``with open_bag(path) as bag:``)."""
    return BagReader(path).open()
