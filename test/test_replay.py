"""``fluoro-perception replay``: offline and live bag replay, output bags and reports.

Offline tests need no DDS. The live test runs the real bag player, segmentation node and
recorder over DDS (isolated domain, localhost; see ``test/conftest.py``); every spin has a
deadline. Models are random-weight ONNX graphs (``make_random_onnx_model``), so accuracy
values are meaningless here: the tests check that every frame is accounted for, that
outputs carry the input stamps and that the reports are written.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from fault_injection import fail_on_call
from model_fixtures import make_random_onnx_model
from rclpy.serialization import deserialize_message

from fluoro_perception import replay
from fluoro_perception.bagio import (
    IMAGE_TOPIC,
    BagFrame,
    BagGroundTruth,
    BagImage,
    BagWriter,
    get_bag_typestore,
    open_bag,
)
from fluoro_perception.cli.main import main
from fluoro_perception.core.types import FrameResult, StentDetection, TipTrack, WireDetection
from fluoro_perception.evaluation.frame_errors import (
    ERRORS_FILE,
    EXIT_FRAMES_FAILED,
    FrameErrorLog,
    iter_errors,
)
from fluoro_perception.nodes.bag_player_node import message_class
from fluoro_perception.sim import SequenceSimulator, SimConfig
from fluoro_perception.sim.cli import BAG_EPOCH_NS, bag_stamp_ns
from fluoro_perception.sim.cli import main as sim_main

SIZE_PX = 96
FPS = 10.0
SEED = 5
N_FRAMES = 6
LIVE_FRAMES = 20
EPOCH_NS = 1_700_000_000 * 1_000_000_000
#: Output topics the node publishes for EVERY processed frame (tip, tip_tracked and stent
#: pose only exist when something was detected).
ALWAYS_PUBLISHED = (
    "guidewire_mask",
    "stent_mask",
    "labels",
    "centerline",
    "tips",
    "stent_outline",
    "overlay",
    "markers",
)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_onnx_model(tmp_path_factory.mktemp("model") / "random.onnx")


def _sim_bag(path: Path, storage: str, frames: int) -> Path:
    code = sim_main(
        ["bag", str(path), "--frames", str(frames), "--fps", str(FPS), "--storage", storage,
         "--seed", str(SEED), "--size", str(SIZE_PX), str(SIZE_PX), "--scenario", "mono",
         "--quiet"]
    )  # fmt: skip
    assert code == 0
    return path


@pytest.fixture(scope="module")
def sim_bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bags")
    return {storage: _sim_bag(root / storage, storage, N_FRAMES) for storage in ("mcap", "sqlite3")}


def _image_only_bag(
    path: Path, frames: int, shape: tuple[int, int] = (48, 64), storage: str = "mcap"
) -> Path:
    """A bag as ``ros2 bag record /fluoro/image_raw`` would write it: images, no GT."""
    rng = np.random.default_rng(0)
    with BagWriter(path, storage=storage) as bag:
        for index in range(frames):
            image = rng.integers(0, 255, shape, dtype=np.uint8)
            bag.write_image(IMAGE_TOPIC, image, EPOCH_NS + index * 100_000_000)
    return path


def _stamps(bag_path: Path, topic: str) -> list[int]:
    with open_bag(bag_path) as bag:
        return [
            int(m.header.stamp.sec) * 1_000_000_000 + int(m.header.stamp.nanosec)
            for _, m in bag.iter_messages(topic)
        ]


# ----------------------------------------------------------------------------- pure units


def test_pixel_spacing_from_markers_is_the_simulators(sim_bags: dict[str, Path]) -> None:
    config = SimConfig(height=SIZE_PX, width=SIZE_PX, fps=FPS, scenario="mono", bit_depth=8)
    expected = SequenceSimulator(SEED, config).pixel_spacing_m
    spacing, source = replay.resolve_pixel_spacing(sim_bags["mcap"], None)
    assert spacing == pytest.approx(expected, rel=1e-9)
    assert "markers" in source


@pytest.mark.parametrize(
    ("override", "expected", "source"),
    [
        (3.0e-4, 3.0e-4, "--pixel-spacing"),
        (None, replay.FALLBACK_PIXEL_SPACING_M, "assumed"),  # no markers in the bag
    ],
)
def test_resolve_pixel_spacing(tmp_path: Path, override, expected, source) -> None:
    bag = _image_only_bag(tmp_path / "bag", 1)
    spacing, where = replay.resolve_pixel_spacing(bag, override)
    assert spacing == expected
    assert source in where


@pytest.mark.parametrize("bad", [0.0, -1e-4, math.nan, math.inf])
def test_resolve_pixel_spacing_rejects_bad_override(tmp_path: Path, bad: float) -> None:
    with pytest.raises(ValueError, match="--pixel-spacing"):
        replay.resolve_pixel_spacing(tmp_path, bad)


def _bag_frame(truth: BagGroundTruth | None) -> BagFrame:
    image = BagImage(IMAGE_TOPIC, EPOCH_NS, EPOCH_NS, "d", "mono8", np.zeros((40, 50), np.uint8))
    return BagFrame(image=image, ground_truth=truth)


def test_truth_from_bag_frame_converts_metres_to_pixels() -> None:
    labels = np.zeros((40, 50), np.uint8)
    labels[20, 10:30] = 1
    truth = BagGroundTruth(
        labels=labels,
        tips_m=np.array([[0.010, 0.020, 0.0], [0.080, 0.010, 0.0]]),  # 2nd: x = 80 px > 49
        tip_directions_rad=np.array([0.5, -1.0]),
        centerline_m=np.array([[0.010, 0.020, 0.0], [0.020, 0.020, 0.0]]),
    )
    frame = replay.truth_from_bag_frame(_bag_frame(truth), 1.0e-3, 3, "seq")
    assert frame is not None
    assert (frame.frame_index, frame.sequence_id, frame.pixel_spacing_m) == (3, "seq", 1.0e-3)
    np.testing.assert_array_equal(frame.labels, labels)
    first, second = frame.wires
    np.testing.assert_allclose(first.tip_px, [10.0, 20.0])
    np.testing.assert_allclose(first.centerline_px, [[10.0, 20.0], [20.0, 20.0]])
    assert (first.tip_direction_rad, first.tip_visible) == (0.5, True)
    np.testing.assert_allclose(second.tip_px, [80.0, 10.0])
    assert second.tip_visible is False and len(second.centerline_px) == 0


def test_truth_from_bag_frame_builds_labels_from_masks_and_none_without_gt() -> None:
    wire = np.zeros((40, 50), np.uint8)
    wire[5, 5] = 255
    stent = np.zeros((40, 50), np.uint8)
    stent[5:7, 5:7] = 255  # the wire pixel wins where both are set
    frame = replay.truth_from_bag_frame(
        _bag_frame(BagGroundTruth(guidewire_mask=wire, stent_mask=stent)), 2e-4, 0, "s"
    )
    assert frame is not None
    assert frame.labels[5, 5] == 1 and frame.labels[6, 6] == 2 and frame.labels.sum() == 1 + 3 * 2
    assert frame.wires == []
    assert replay.truth_from_bag_frame(_bag_frame(None), 2e-4, 0, "s") is None


def _result(confidence: float, with_stent: bool, with_track: bool) -> FrameResult:
    centerline = np.array([[10.0, 10.0], [20.0, 10.0], [30.0, 10.0]], np.float32)
    wire = WireDetection(0, centerline, centerline[0], math.pi, confidence, 20.0)
    stent = StentDetection(
        0, np.array([[1.0, 1.0], [5.0, 1.0], [5.0, 3.0]]), np.array([3.0, 2.0]), 0.0, 4, 2, 0.9
    )
    track = TipTrack(0, EPOCH_NS, np.array([10.0, 10.0]), np.zeros(2), np.eye(4), math.pi, 3, 0)
    mask = np.zeros((40, 50), np.uint8)
    return FrameResult(
        stamp_ns=EPOCH_NS,
        labels=mask,
        guidewire_mask=mask,
        stent_mask=mask,
        wires=[wire],
        stents=[stent] if with_stent else [],
        tracks=[track] if with_track else [],
    )


@pytest.mark.parametrize(
    ("confidence", "with_stent", "with_track", "extra_keys"),
    [
        (0.9, True, True, {"tip", "tip_tracked", "stent_pose"}),
        (0.1, False, True, {"tip_tracked"}),  # below min_tip_confidence: no tip pose
        (0.9, False, False, {"tip"}),
    ],
)
def test_perception_messages_follow_the_node_rules(
    confidence: float, with_stent: bool, with_track: bool, extra_keys: set[str]
) -> None:
    from fluoro_perception.nodes import conversions as conv

    config = replay.load_node_config({"pixel_spacing_m": 1e-3})
    header = conv.make_header(EPOCH_NS + 5, "detector")
    result = _result(confidence, with_stent, with_track)
    messages = dict(
        replay.perception_messages(result, np.zeros((40, 50), np.uint8), "mono8", header, config)
    )
    assert set(messages) == set(ALWAYS_PUBLISHED) | extra_keys
    for message in messages.values():
        stamped = message.markers[0] if hasattr(message, "markers") else message
        assert conv.stamp_to_ns(stamped.header.stamp) == EPOCH_NS + 5
    assert len(messages["tips"].poses) == (1 if confidence >= config.min_tip_confidence else 0)
    assert messages["centerline"].poses[0].pose.position.x == pytest.approx(10.0e-3)


def test_cdr_header_stamp_is_read_without_deserializing() -> None:
    from fluoro_perception.nodes.bag_recorder_node import cdr_header_stamp_ns

    typestore = get_bag_typestore()
    header = typestore.types["std_msgs/msg/Header"](
        stamp=typestore.types["builtin_interfaces/msg/Time"](sec=5, nanosec=7), frame_id="f"
    )
    raw = typestore.serialize_cdr(header, "std_msgs/msg/Header")
    assert cdr_header_stamp_ns(bytes(raw)) == 5_000_000_007
    big_endian = b"\x00\x00\x00\x00" + struct.pack(">iI", 2, 3)
    assert cdr_header_stamp_ns(big_endian) == 2_000_000_003
    assert cdr_header_stamp_ns(b"\x00\x01") is None


# ----------------------------------------------------------------------------- offline


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_offline_replay_writes_every_topic_with_input_stamps(
    tmp_path: Path, model_path: Path, sim_bags: dict[str, Path], storage: str
) -> None:
    summary = replay.replay_offline(
        sim_bags[storage], tmp_path / "out", model=model_path, providers=["cpu"], progress=False
    )
    input_stamps = [bag_stamp_ns(i, FPS) for i in range(N_FRAMES)]
    assert (summary.frames_read, summary.frames_processed, summary.num_dropped) == (
        N_FRAMES,
        N_FRAMES,
        0,
    )
    topics = replay.perception_topics()
    with open_bag(summary.output_bag) as bag:
        written = bag.topics
        for key in ALWAYS_PUBLISHED:
            topic, msgtype = topics[key]
            assert written[topic] == msgtype
            assert bag.message_count(topic) == N_FRAMES, topic
        assert written[replay.DIAGNOSTICS_TOPIC] == replay.DIAGNOSTICS_TYPE
        # the bytes are what the node would publish: rclpy reads them back as its types
        typestore = get_bag_typestore()
        for key in ("centerline", "labels", "markers"):
            topic, msgtype = topics[key]
            _, message = next(bag.iter_messages(topic))
            raw = typestore.serialize_cdr(message, msgtype)
            decoded = deserialize_message(bytes(raw), message_class(msgtype))
            assert type(decoded).__name__ == msgtype.rsplit("/", 1)[1]
        # every output is logged at its input stamp
        log_times = [t for t, _ in bag.iter_messages(topics["labels"][0])]
    assert _stamps(Path(summary.output_bag), topics["labels"][0]) == input_stamps
    assert log_times == input_stamps
    assert input_stamps[0] == BAG_EPOCH_NS
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["frames_evaluated"] == N_FRAMES
    assert "## Targets" in (out / "report.md").read_text()
    stored = json.loads((out / replay.SUMMARY_JSON).read_text())
    assert stored["has_ground_truth"] is True and stored["latency_ms"]["count"] == N_FRAMES
    assert "## Dropped frames" in (out / replay.SUMMARY_MD).read_text()


def test_offline_replay_is_deterministic(
    tmp_path: Path, model_path: Path, sim_bags: dict[str, Path]
) -> None:
    masks = []
    for name in ("a", "b"):
        summary = replay.replay_offline(
            sim_bags["mcap"], tmp_path / name, model=model_path, providers=["cpu"], progress=False
        )
        with open_bag(summary.output_bag) as bag:
            masks.append(
                [img.image for img in bag.iter_images(replay.perception_topics()["labels"][0])]
            )
    for first, second in zip(*masks, strict=True):
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_cli_replay_of_a_bag_without_ground_truth(
    tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str], storage: str
) -> None:
    bag = _image_only_bag(tmp_path / "recorded", 4, storage=storage)
    out = tmp_path / "out"
    code = main(
        ["replay", str(bag), "--output", str(out), "--model", str(model_path), "--providers",
         "cpu", "--quiet"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "output bag:" in printed and "4 of 4 frames processed" in printed
    stored = json.loads((out / replay.SUMMARY_JSON).read_text())
    assert stored["has_ground_truth"] is False
    assert stored["latency_ms"]["count"] == 4 and stored["latency_ms"]["p95"] is not None
    assert not (out / "metrics.json").exists()
    assert "no ground truth" in (out / replay.SUMMARY_MD).read_text()
    # a second run into the same folder needs --overwrite
    again = main(["replay", str(bag), "--output", str(out), "--model", str(model_path), "--quiet"])
    assert again == 2
    assert "--overwrite" in capsys.readouterr().err


def _damage_message_record(bag_dir: Path, stamp_ns: int, part: str) -> None:
    """Damage the MCAP message record of the image with ``stamp_ns``.

    A message record is: opcode (1 byte), record length (uint64), channel id (2),
    sequence (4), log time (8), publish time (8), data. The record is found by its log
    time (15 bytes after the opcode). ``part``: ``"opcode"`` (an opcode no MCAP version
    defines: the reader skips the record) or ``"length"`` (an absurd length: the reader
    cannot get past the record's chunk).
    """
    storage = next(bag_dir.glob("*.mcap"))
    data = bytearray(storage.read_bytes())
    log_time = struct.pack("<Q", stamp_ns)
    at = data.find(log_time)
    while at >= 0 and data[at - 15] != 0x05:  # 0x05 = MCAP Message opcode
        at = data.find(log_time, at + 1)
    assert at > 0, "message record not found"
    if part == "opcode":
        data[at - 15] = 0x7F
    else:
        data[at - 14 : at - 6] = struct.pack("<Q", 1 << 40)
    storage.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("part", "frames", "shape", "damaged", "processed", "skipped"),
    [
        # one unknown record: that frame is lost, the others are replayed
        ("opcode", 4, (48, 64), 2, [0, 1, 3], {"lost in damaged storage": 1}),
        # a broken length: its 1 MiB chunk (frames 4-7 of 256 kB frames) is unreadable,
        # the frames of the first chunk are replayed
        ("length", 8, (512, 512), 6, [0, 1, 2, 3], {"unreadable after storage damage": 4}),
    ],
)
def test_offline_replay_of_a_damaged_bag_reports_what_was_skipped(
    tmp_path: Path, model_path: Path, part, frames, shape, damaged, processed, skipped
) -> None:
    bag = _image_only_bag(tmp_path / "bag", frames, shape)
    _damage_message_record(bag, EPOCH_NS + damaged * 100_000_000, part)
    summary = replay.replay_offline(
        bag, tmp_path / "out", model=model_path, providers=["cpu"], progress=False
    )
    assert summary.frames_processed == len(processed)
    counts = {k: v for k, v in summary.skipped.items() if not k.startswith("damage: ")}
    assert counts == skipped
    damage = [reason for reason in summary.skipped if reason.startswith("damage: ")]
    assert len(damage) == (1 if part == "length" else 0)
    assert _stamps(Path(summary.output_bag), replay.perception_topics()["labels"][0]) == [
        EPOCH_NS + index * 100_000_000 for index in processed
    ]
    text = (tmp_path / "out" / replay.SUMMARY_MD).read_text()
    for reason, count in skipped.items():
        assert f"{reason}: {count}" in text
    # the unread messages are one unnamed group per reason, the damage detail in its reason
    [(reason, count)] = skipped.items()
    [record] = iter_errors(tmp_path / "out" / ERRORS_FILE)
    assert (record["frame"], record["stage"], record["count"]) == (None, "read", count)
    assert reason in record["reason"]
    assert ("is damaged after" in record["reason"]) == (part == "length")
    assert summary.frames_failed == {"read": count}
    assert f"{count} failed" in summary.one_line()


@pytest.mark.parametrize(
    ("module", "name", "call", "stage"),
    [
        # a RuntimeError in the geometry: not one of the errors the pipeline used to catch
        ("fluoro_perception.core.pipeline", "extract_stents", 3, "geometry"),
        # the 1st message write is the first output of frame 0
        ("fluoro_perception.replay.offline", "write_rclpy_message", 1, "write"),
        ("fluoro_perception.evaluation.frame_metrics", "compute_frame_metrics", 5, "metrics"),
    ],
)
def test_a_frame_that_fails_is_recorded_and_the_replay_goes_on(
    tmp_path: Path,
    model_path: Path,
    sim_bags: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    name: str,
    call: int,
    stage: str,
) -> None:
    import importlib

    target = importlib.import_module(module)
    fail_on_call(monkeypatch, target, name, call, lambda: RuntimeError("one frame goes wrong"))
    out = tmp_path / "out"
    code = main(
        ["replay", str(sim_bags["mcap"]), "--output", str(out), "--model", str(model_path),
         "--providers", "cpu", "--quiet"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == EXIT_FRAMES_FAILED, printed
    failed_index = {"write": 0}.get(stage, call - 1)  # each is called once per frame
    failed_stamp = bag_stamp_ns(failed_index, FPS)
    [record] = iter_errors(out / ERRORS_FILE)
    assert (record["frame"], record["stage"], record["count"]) == (str(failed_stamp), stage, 1)
    assert "RuntimeError: one frame goes wrong" in record["reason"]
    # every other frame is processed, written and scored; the failed one left nothing
    kept = [bag_stamp_ns(i, FPS) for i in range(N_FRAMES) if i != failed_index]
    stored = json.loads((out / replay.SUMMARY_JSON).read_text())
    assert (stored["frames_read"], stored["frames_processed"]) == (N_FRAMES, N_FRAMES - 1)
    assert stored["frames_dropped"] == {"processing_error": 1}
    assert (stored["frames_failed"], stored["num_failed"]) == ({stage: 1}, 1)
    assert f"{N_FRAMES - 1} of {N_FRAMES} frames processed, 1 dropped, 1 failed" in printed
    assert f"failed frames: 1 ({stage}: 1)" in printed
    with open_bag(out / replay.OUTPUT_BAG_DIR) as bag:  # logged at the input stamps
        for key in ALWAYS_PUBLISHED:
            topic = replay.perception_topics()[key][0]
            assert [t for t, _ in bag.iter_messages(topic)] == kept, key
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["frames_evaluated"] == N_FRAMES - 1
    assert "## Failed frames" in (out / replay.SUMMARY_MD).read_text()


def test_cli_replay_without_failures_leaves_an_empty_errors_file(
    tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bag = _image_only_bag(tmp_path / "recorded", 2)
    out = tmp_path / "out"
    code = main(
        ["replay", str(bag), "--output", str(out), "--model", str(model_path), "--providers",
         "cpu", "--quiet"]
    )  # fmt: skip
    assert code == 0
    assert (out / ERRORS_FILE).read_text() == ""
    assert "failed frames: 0" in capsys.readouterr().out


def test_scoring_a_recorded_bag_leaves_out_a_frame_that_fails(
    tmp_path: Path, model_path: Path, sim_bags: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``evaluate_recorded`` (live replay, demo): a frame whose scoring raises is recorded
    and left out, the others are scored."""
    import fluoro_perception.evaluation.frame_metrics as frame_metrics
    from fluoro_perception.evaluation.report import RunInfo

    bag = sim_bags["mcap"]
    summary = replay.replay_offline(
        bag, tmp_path / "replayed", model=model_path, providers=["cpu"], progress=False
    )
    fail_on_call(monkeypatch, frame_metrics, "compute_frame_metrics", 2, lambda: KeyError("gt"))
    run_info = RunInfo.for_model_file(model_path, "cpu", dataset_path=str(bag), dataset_frames=6)
    out = tmp_path / "scored"
    out.mkdir()
    with FrameErrorLog(out / ERRORS_FILE) as errors:
        paths, _, skipped = replay.evaluate_recorded(
            out,
            bag,
            summary.output_bag,
            topic=IMAGE_TOPIC,
            pixel_spacing_m=summary.pixel_spacing_m,
            latencies_ms={},
            run_info=run_info,
            errors=errors,
        )
    assert skipped == {replay.SCORING_FAILED: 1}
    [record] = iter_errors(out / ERRORS_FILE)
    assert record == {
        "frame": str(bag_stamp_ns(1, FPS)),
        "stage": "metrics",
        "reason": "KeyError: 'gt'",
        "count": 1,
    }
    metrics = json.loads(paths["metrics"].read_text())
    assert metrics["dataset"]["frames_evaluated"] == N_FRAMES - 1


# ----------------------------------------------------------------------------- live


@pytest.mark.ros
def test_live_replay_accounts_for_every_frame(
    tmp_path: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every played frame is processed or dropped; the one frame the node's geometry
    fails on is counted by the node and becomes an unnamed errors.jsonl group."""
    import fluoro_perception.core.pipeline as pipeline_module

    bag = _sim_bag(tmp_path / "bag", "mcap", LIVE_FRAMES)
    failure = RuntimeError("one frame goes wrong")
    fail_on_call(monkeypatch, pipeline_module, "extract_stents", 3, lambda: failure)
    summary = replay.replay_live(
        bag,
        tmp_path / "live",
        model=model_path,
        providers=["cpu"],
        rate=3.0,
        progress=False,
        timeout_s=90.0,
    )
    assert summary.frames_read == LIVE_FRAMES  # the player published every frame
    assert summary.frames_processed + summary.num_dropped == LIVE_FRAMES, summary.frames_dropped
    assert summary.frames_processed >= 1
    assert summary.frames_dropped["processing_error"] == 1
    assert summary.frames_failed == {"pipeline": 1}
    [record] = iter_errors(tmp_path / "live" / ERRORS_FILE)
    assert (record["frame"], record["stage"], record["count"]) == (None, "pipeline", 1)
    assert "one frame goes wrong" in record["reason"]
    labels_topic = replay.perception_topics()["labels"][0]
    recorded = _stamps(Path(summary.output_bag), labels_topic)
    input_stamps = {bag_stamp_ns(i, FPS) for i in range(LIVE_FRAMES)}
    assert len(recorded) == summary.frames_processed
    assert set(recorded) <= input_stamps  # outputs carry the input stamps
    with open_bag(summary.output_bag) as bag:
        assert replay.DIAGNOSTICS_TOPIC in bag.topics
        # receive stamps on the sim clock (bag time, not the 2020s wall clock): within a
        # few seconds of the input stamp (the /clock sample may arrive a little after the
        # output, so a small negative difference is possible)
        log_times = [t for t, _ in bag.iter_messages(labels_topic)]
    assert all(-0.5e9 < t - s < 5e9 for t, s in zip(log_times, recorded, strict=True))
    # end-to-end latency needs the recorder to have seen the input image too; under load
    # it may miss some (it subscribes like any other node), never invent one
    assert 1 <= summary.latency_ms["count"] <= summary.frames_processed
    assert summary.rate_hz > 0 and summary.input_rate_hz == pytest.approx(FPS)
    out = tmp_path / "live"
    assert json.loads((out / "metrics.json").read_text())["dataset"]["frames_evaluated"] >= 1
    text = (out / replay.SUMMARY_MD).read_text()
    assert "3x the recorded rate" in text and "end-to-end" in text


@pytest.mark.ros
def test_player_process_and_recorder_node_over_dds(tmp_path: Path) -> None:
    """``bag_player_node`` in its own process, the recorder in this one (cross-process DDS)."""
    import subprocess
    import sys
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from fluoro_perception.bagio import GT_LABELS_TOPIC, GT_TIP_TOPIC
    from fluoro_perception.nodes.bag_recorder_node import BagRecorderNode

    frames = 8
    bag = _sim_bag(tmp_path / "bag", "sqlite3", frames)
    context = rclpy.Context()
    rclpy.init(context=context)
    recorder = BagRecorderNode(
        tmp_path / "recorded",
        topic_types={
            GT_LABELS_TOPIC: "sensor_msgs/msg/Image",
            GT_TIP_TOPIC: "geometry_msgs/msg/PoseStamped",
        },
        completion_topic=GT_LABELS_TOPIC,
        context=context,
        parameter_overrides=[Parameter("use_sim_time", value=True)],
    )
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(recorder)
    command = [sys.executable, "-m", "fluoro_perception.nodes.bag_player_node", str(bag),
               "--rate", "4", "--wait-subscribers", "1"]  # fmt: skip
    player = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60.0
        while recorder.frames_recorded < frames and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        output, _ = player.communicate(timeout=30.0)
    finally:
        if player.poll() is None:
            player.kill()
        executor.remove_node(recorder)
        recorder.destroy_node()
        rclpy.try_shutdown(context=context)
    assert player.returncode == 0, output
    assert "playback done" in output
    records = recorder.frame_records()
    expected = [bag_stamp_ns(i, FPS) for i in range(frames)]
    assert sorted(records) == expected
    # the recorder also listens to the images (best effort, as the node does), so frames
    # have an end-to-end time; best effort may lose one image right after discovery
    missing = [s for s, r in records.items() if r.end_to_end_ms is None]
    assert len(missing) <= 1, records
    with open_bag(tmp_path / "recorded") as recorded:
        assert recorded.message_count(GT_LABELS_TOPIC) == frames
        log_times = [t for t, _ in recorded.iter_messages(GT_LABELS_TOPIC)]
    # receive stamps on the player's /clock: bag time, close to each header stamp
    assert all(-0.5e9 < t - s < 5e9 for t, s in zip(log_times, expected, strict=True)), log_times
