"""Faults at configure time (node over real DDS) and in bags (offline replay).

The engine's own errors are unit-tested in ``test/core/test_engine.py`` and
``test/core/test_model_registry.py``; the node tests cover a missing model and a card
mismatch. Here every model fault goes through the node's lifecycle: the configure
transition FAILS with one line naming the file and the fault, ``/diagnostics`` says so at
ERROR, a retried configure fails again cleanly (no exception, no crash loop, the node
keeps serving diagnostics), and once the file is fixed the SAME node configures, activates
and processes frames. A missing provider degrades to CPU only when allowed, and says so.
Bags: cut-off recordings, missing topics, wrong types and undecodable images in
``replay_offline`` (damaged chunks/records are covered in ``test/test_replay.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from _node_harness import (
    base_overrides,
    diagnostics_values,
    image_msg,
    make_grey_level_model,
    outputs_with_stamp,
    wait_for,
)
from lifecycle_msgs.msg import State
from model_fixtures import make_random_onnx_model
from rclpy.lifecycle import TransitionCallbackReturn

from fluoro_perception import replay
from fluoro_perception.bagio import IMAGE_TOPIC, BagWriter, get_bag_typestore, open_bag
from fluoro_perception.core.model_metadata import METADATA_KEY
from fluoro_perception.nodes import conversions as conv

EPOCH_NS = 1_700_000_000 * 1_000_000_000
PERIOD_NS = 100_000_000


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 2048, dtype=np.uint8).tobytes())


def _bad_metadata(path: Path) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: "{not json"})
    onnx.save(model, str(path))


def _four_classes(path: Path) -> None:
    # metadata promises 4 classes; the graph's logits have 3 channels
    make_random_onnx_model(
        path,
        input_size=(64, 64),
        metadata_overrides={"classes": ["background", "guidewire", "stent", "catheter"]},
    )


def _wrong_input_size(path: Path) -> None:
    make_random_onnx_model(
        path, input_size=(64, 64), metadata_overrides={"preprocessing": {"input_size": [32, 32]}}
    )


# (name, how the model file is broken (None: the file is absent), extra parameters,
#  fragment of the one-line reason, whether putting a good file there fixes it)
MODEL_FAULTS = [
    ("missing", None, {}, "does not exist", True),
    ("truncated", _truncate, {}, "not a readable ONNX protobuf", True),
    ("corrupt", _random_bytes, {}, "not a readable ONNX protobuf", True),
    ("empty", lambda p: p.write_bytes(b""), {}, "no nodes", True),
    ("bad_metadata", _bad_metadata, {}, "not valid JSON", True),
    ("io_mismatch", _four_classes, {}, "'logits' has 3 channels; expected 4", True),
    ("input_size", _wrong_input_size, {}, "expected (B, 1, 32, 32)", True),
    (
        "sha256",
        lambda p: None,
        {"model.expected_sha256": "0" * 64},
        "does not match expected",
        False,
    ),
    (
        "provider_no_fallback",
        lambda p: None,
        {"model.providers": ["CUDAExecutionProvider"], "model.allow_cpu_fallback": False},
        "allow_cpu_fallback=False",
        False,
    ),
]


@pytest.mark.ros
@pytest.mark.parametrize(
    ("name", "damage", "extra", "fragment", "fixable"),
    MODEL_FAULTS,
    ids=[fault[0] for fault in MODEL_FAULTS],
)
def test_model_fault_fails_configure_cleanly_and_a_fixed_file_configures(
    harness_factory, tmp_path, name, damage, extra, fragment, fixable
) -> None:
    model = tmp_path / f"{name}.onnx"
    if damage is not None:
        make_grey_level_model(model)
        damage(model)
    harness = harness_factory(base_overrides(model, **extra))
    node = harness.node
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    error = node.configure_error
    assert fragment in error and str(model) in error and "\n" not in error, error
    wait_for(
        lambda: any(
            m.status[0].level == conv.DiagnosticStatus.ERROR and fragment in m.status[0].message
            for m in harness.messages("diagnostics")
        ),
        "ERROR status with the reason on /diagnostics",
    )
    # retrying is safe: same clean failure, the node stays up and unconfigured
    for _ in range(2):
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    assert node.configure_error == error
    if not fixable:
        return
    make_grey_level_model(model)  # the operator puts a good model in place
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.configure_error == ""
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    harness.wait_for_subscriber()
    stamp = harness.now_ns()
    harness.publisher.publish(image_msg(stamp))
    wait_for(lambda: outputs_with_stamp(harness, "labels", stamp), "a frame after the fix")


@pytest.mark.ros
def test_missing_provider_falls_back_to_cpu_only_when_allowed_and_says_so(
    harness_factory, grey_model, capfd
) -> None:
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    harness = harness_factory(
        base_overrides(
            grey_model, **{"model.providers": providers, "model.allow_cpu_fallback": True}
        )
    )
    node = harness.node
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_ACTIVE
    values = node.diagnostics_values()[2]
    assert values["provider"] == "CPUExecutionProvider"
    assert "CUDAExecutionProvider" in values["provider_fallback"]
    wait_for(
        lambda: any(
            "CUDAExecutionProvider" in v.get("provider_fallback", "")
            for v in diagnostics_values(harness)
        ),
        "the fallback on /diagnostics",
    )
    assert "provider fallback: requested CUDAExecutionProvider" in capfd.readouterr().err
    # the same request without the fallback fails the transition (see MODEL_FAULTS)


def test_no_fallback_note_when_the_first_provider_runs(grey_model) -> None:
    # the first requested provider is CPU: nothing degraded, nothing to report
    import rclpy
    from rclpy.parameter import Parameter

    from fluoro_perception.nodes.segmentation_node import SegmentationNode

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = SegmentationNode(
            context=context,
            parameter_overrides=[
                Parameter(k, value=v) for k, v in base_overrides(grey_model).items()
            ],
        )
        try:
            assert node.diagnostics_values()[2]["provider_fallback"] == ""
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


# ----------------------------------------------------------------------------- bags


def _image_bag(path: Path, frames: int, shape: tuple[int, int] = (256, 256)) -> Path:
    rng = np.random.default_rng(1)
    with BagWriter(path, storage="mcap") as bag:
        for index in range(frames):
            image = rng.integers(0, 255, shape, dtype=np.uint8)
            bag.write_image(IMAGE_TOPIC, image, EPOCH_NS + index * PERIOD_NS)
    return path


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_onnx_model(tmp_path_factory.mktemp("model") / "random.onnx")


def _replay(bag: Path, out: Path, model: Path):
    return replay.replay_offline(bag, out, model=model, providers=["cpu"], progress=False)


def test_cut_off_recording_is_replayed_up_to_the_cut(tmp_path, random_model) -> None:
    # 40 frames of 64 kB: rosbags' 1 MiB chunks hold 16 frames each (chunks 0-15, 16-31,
    # 32-39 + summary); cutting the file at 60 % leaves only the first chunk complete
    bag = _image_bag(tmp_path / "cut", 40)
    storage = next(bag.glob("*.mcap"))
    data = storage.read_bytes()
    storage.write_bytes(data[: int(len(data) * 0.6)])
    summary = _replay(bag, tmp_path / "out", random_model)
    assert summary.frames_processed == 16
    assert summary.skipped["messages lost in truncated recording"] == 24
    assert any(reason.startswith("truncated recording: last ") for reason in summary.skipped)
    text = (tmp_path / "out" / replay.SUMMARY_MD).read_text()
    assert "messages lost in truncated recording: 24" in text
    # the output bag holds the frames that could be read, with their input stamps
    with open_bag(summary.output_bag) as output:
        labels_topic = replay.perception_topics()["labels"][0]
        stamps = [conv.stamp_to_ns(m.header.stamp) for _, m in output.iter_messages(labels_topic)]
    assert stamps == [EPOCH_NS + index * PERIOD_NS for index in range(16)]


def test_bag_without_the_image_topic_reports_the_topics_it_has(tmp_path, random_model) -> None:
    typestore = get_bag_typestore()
    string_type = typestore.types["std_msgs/msg/String"]
    with BagWriter(tmp_path / "other", storage="mcap") as bag:
        for index in range(3):
            bag.write_message(
                "/other", "std_msgs/msg/String", string_type(data="x"), EPOCH_NS + index
            )
    summary = _replay(tmp_path / "other", tmp_path / "out", random_model)
    assert summary.frames_processed == 0
    (reason,) = [r for r in summary.skipped if r.startswith("damage: ")]
    assert f"has no topic {IMAGE_TOPIC}" in reason and "/other (std_msgs/msg/String)" in reason


def test_image_topic_of_an_unexpected_type_is_reported(tmp_path, random_model) -> None:
    typestore = get_bag_typestore()
    string_type = typestore.types["std_msgs/msg/String"]
    with BagWriter(tmp_path / "wrong", storage="mcap") as bag:
        for index in range(3):
            bag.write_message(
                IMAGE_TOPIC, "std_msgs/msg/String", string_type(data="x"), EPOCH_NS + index
            )
    summary = _replay(tmp_path / "wrong", tmp_path / "out", random_model)
    assert summary.frames_processed == 0
    assert summary.skipped["unreadable after storage damage"] == 3
    (reason,) = [r for r in summary.skipped if r.startswith("damage: ")]
    assert "std_msgs/msg/String" in reason and "expected sensor_msgs/msg/Image" in reason


def test_undecodable_images_in_a_bag_are_skipped_and_counted(tmp_path, random_model) -> None:
    typestore = get_bag_typestore()
    image_type = typestore.types["sensor_msgs/msg/Image"]
    header_type = typestore.types["std_msgs/msg/Header"]
    time_type = typestore.types["builtin_interfaces/msg/Time"]

    def raw_image(index: int, encoding: str, step: int, nbytes: int):
        stamp_ns = EPOCH_NS + index * PERIOD_NS
        header = header_type(
            stamp=time_type(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
            frame_id="detector",
        )
        return image_type(
            header=header, height=48, width=64, encoding=encoding, is_bigendian=0, step=step,
            data=np.zeros(nbytes, np.uint8),
        )  # fmt: skip

    rng = np.random.default_rng(2)
    with BagWriter(tmp_path / "bad", storage="mcap") as bag:
        for index in range(6):
            stamp_ns = EPOCH_NS + index * PERIOD_NS
            if index == 2:  # float image: refused
                message = raw_image(index, "32FC1", 256, 48 * 256)
                bag.write_message(IMAGE_TOPIC, "sensor_msgs/msg/Image", message, stamp_ns)
            elif index == 4:  # truncated buffer
                message = raw_image(index, "mono8", 64, 100)
                bag.write_message(IMAGE_TOPIC, "sensor_msgs/msg/Image", message, stamp_ns)
            else:
                image = rng.integers(0, 255, (48, 64), dtype=np.uint8)
                bag.write_image(IMAGE_TOPIC, image, stamp_ns)
    summary = _replay(tmp_path / "bad", tmp_path / "out", random_model)
    assert summary.frames_processed == 4
    assert summary.skipped == {f"undecodable image on {IMAGE_TOPIC}": 2}
    report = json.loads((tmp_path / "out" / "replay.json").read_text())
    assert report["frames_processed"] == 4
