"""``fluoro-perception bench``: a ``--quick`` run end to end plus its pure helpers.

The end-to-end test runs every part (model only, in process, three processes over real
DDS, torch baselines) on a tiny random model at 64 px and checks the JSON's documented
keys and that counts add up. There are NO timing assertions: speed is what the command
prints, not something a unit test can hold on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
from model_fixtures import make_random_onnx_model

from fluoro_perception.bench.dds import _peak_search, counter_deltas, match_run
from fluoro_perception.bench.geometry_maps import MAP_KINDS, adversarial_map, bench_geometry_maps
from fluoro_perception.bench.inprocess import PIPELINE_STAGES, ping_pong_indices
from fluoro_perception.bench.report import evaluate_targets, format_table, summarize_ms
from fluoro_perception.cli import bench as bench_cli
from fluoro_perception.cli.main import SUBCOMMANDS
from fluoro_perception.core.geometry import GEOMETRY_CAPS

SIZE = 64
DDS_RATE_HZ = 15.0
DDS_DURATION_S = 1.5


def _bench_args(argv: list[str]) -> argparse.Namespace:
    # the bench subcommand alone: the test does not depend on the other subcommands
    parser = argparse.ArgumentParser(prog="fluoro-perception")
    bench_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


def test_bench_is_a_registered_subcommand() -> None:
    assert SUBCOMMANDS["bench"] == "bench"


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    folder = tmp_path_factory.mktemp("bench")
    model = make_random_onnx_model(folder / "tiny.onnx", input_size=(SIZE, SIZE))
    out = folder / "report" / "bench.json"
    args = _bench_args(
        ["--quick", "--model", str(model), "--size", str(SIZE), "--rates", str(DDS_RATE_HZ),
         "--dds-duration", str(DDS_DURATION_S), "--providers", "cpu", "cuda",
         "--json", str(out)]
    )  # fmt: skip
    exit_code = args.func(args)
    assert exit_code == 0
    return json.loads(out.read_text()), str(model)


def _positive_summary(summary: dict, count: int) -> None:
    assert summary["n"] == count
    assert 0 < summary["min"] <= summary["median"] <= summary["p95"] <= summary["max"]
    assert summary["std"] >= 0


def test_quick_report_meta_and_model_latency(quick_report: tuple[dict, str]) -> None:
    report, model_path = quick_report
    assert report["schema_version"] == 1
    meta = report["meta"]
    assert meta["quick"] is True and meta["size_px"] == SIZE
    assert meta["model"]["path"] == model_path
    assert meta["model"]["source"] == "user"
    assert meta["model"]["architecture"] == "random_test_net"
    assert meta["model"]["input_size"] == [SIZE, SIZE]
    assert meta["machine"]["logical_cpus"] >= 1 and meta["machine"]["cpu_model"]

    rows = report["model_latency"]
    cpu_rows = [r for r in rows if r["provider"] == "CPUExecutionProvider"]
    # off / cold / warm, then the thread sweep (1 and all CPUs, 1 row when they coincide)
    assert [r["optimized_cache"] for r in cpu_rows[:3]] == ["off", "cold", "warm"]
    assert len(cpu_rows) in (4, 5)
    runs = meta["settings"]["runs"]
    for row in cpu_rows:
        assert row["skipped"] is None and row["active_provider"] == "CPUExecutionProvider"
        _positive_summary(row["latency_ms"], runs)
        assert row["load_ms"] > 0
        assert row["throughput_fps"] == pytest.approx(1e3 / row["latency_ms"]["median"])


def test_quick_report_cuda_latency(quick_report: tuple[dict, str]) -> None:
    import onnxruntime as ort

    report, _ = quick_report
    cuda = [r for r in report["model_latency"] if r["provider"] == "CUDAExecutionProvider"]
    assert len(cuda) >= 1
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        # one row that says why instead of a figure; the figures need a CUDA machine
        (row,) = cuda
        assert row["skipped"].startswith("CUDAExecutionProvider not available here"), row
        pytest.skip(f"no CUDA here: {row['skipped']}")
    reasons = [r["skipped"] for r in cuda if r["skipped"]]
    if len(reasons) == len(cuda):  # listed by ONNX Runtime, but it could not load it
        pytest.skip(f"CUDAExecutionProvider listed but not usable here: {reasons[0]}")
    assert reasons == [], reasons  # usable for one cache mode: usable for all
    assert [r["optimized_cache"] for r in cuda] == ["off", "cold", "warm"]
    runs = report["meta"]["settings"]["runs"]
    for row in cuda:
        # a CUDA row never measures the CPU: no silent fallback in the bench
        assert row["active_provider"] == "CUDAExecutionProvider"
        _positive_summary(row["latency_ms"], runs)
        assert row["load_ms"] > 0
        assert row["throughput_fps"] == pytest.approx(1e3 / row["latency_ms"]["median"])


def test_quick_report_inprocess(quick_report: tuple[dict, str]) -> None:
    report, _ = quick_report
    inprocess = report["inprocess"]
    frames = report["meta"]["settings"]["frames"]
    assert inprocess["frames"] == frames and inprocess["size_px"] == SIZE
    _positive_summary(inprocess["latency_ms"], frames)
    expected_stages = ["msg_decode", *PIPELINE_STAGES]
    if inprocess["messages_built"]:
        expected_stages += ["build_messages", "serialize"]
        assert inprocess["messages_per_frame"] >= 6  # tips, path, outline, 3 masks at least
    assert list(inprocess["stages_ms"]) == expected_stages
    for summary in inprocess["stages_ms"].values():
        assert summary["n"] == frames
    # the stages are parts of the end-to-end time of each frame
    assert (
        sum(s["mean"] for s in inprocess["stages_ms"].values())
        <= inprocess["latency_ms"]["mean"] * 1.001
    )
    assert inprocess["throughput_fps"] == pytest.approx(frames / inprocess["wall_s"])
    assert inprocess["cpu_percent"] > 0 and inprocess["peak_rss_mib"] > 0
    assert 0 <= inprocess["frames_with_wire"] <= frames


def test_quick_report_dds_counts_add_up(quick_report: tuple[dict, str]) -> None:
    report, _ = quick_report
    dds = report["dds"]
    assert dds["skipped"] is None and 1 <= dds["domain_id"] <= 101
    (row,) = dds["rates"]
    assert row["rate_hz"] == DDS_RATE_HZ and row["duration_s"] == DDS_DURATION_S
    assert row["published"] == round(DDS_RATE_HZ * DDS_DURATION_S)
    assert row["published"] == row["received"] + row["dropped"]
    assert 0 <= row["received"] <= row["published"]
    if row["received"]:
        _positive_summary(row["latency_ms"], row["received"])
    peak = dds["peak"]
    assert 1 <= len(peak["steps"]) <= report["meta"]["settings"]["peak_max_steps"]
    for step in peak["steps"]:
        assert step["published"] == step["received"] + step["dropped"]


def test_quick_report_torch_ratios_and_targets(quick_report: tuple[dict, str]) -> None:
    report, _ = quick_report
    torch_section = report["torch_baselines"]
    assert torch_section["skipped"] is None and torch_section["size_px"] == SIZE
    rows = [r for r in torch_section["rows"] if not r["skipped"]]
    assert {r["name"] for r in rows} >= {"monai_attention_unet", "monai_basic_unet"}
    assert {r["threads"] for r in rows} == set(torch_section["threads"])
    best_attention_fps = max(
        r["throughput_fps"] for r in rows if r["name"] == "monai_attention_unet"
    )
    assert report["ratios"]["pipeline_over_attention_unet_eager"] == pytest.approx(
        report["inprocess"]["throughput_fps"] / best_attention_fps
    )
    targets = {t["name"]: t for t in report["targets"]}
    assert set(targets) == {
        "inprocess_throughput",
        "inprocess_median_latency",
        "dds_15hz_p95_latency",
        "dds_15hz_dropped_frames",
        "throughput_vs_attention_unet_eager",
    }
    # a 64 px, 1.5 s run is never a verdict on the 512 px / 60 s targets: it says so
    assert "512" in targets["inprocess_throughput"]["note"]
    assert "indicative" in targets["dds_15hz_dropped_frames"]["note"]


# ------------------------------------------------------------------ pure helpers


def test_summarize_ms_hand_computed() -> None:
    summary = summarize_ms([4.0, 1.0, 3.0, 2.0])
    assert summary["n"] == 4
    assert summary["median"] == 2.5
    assert summary["p95"] == pytest.approx(3.85)  # position 0.95 * 3 = 2.85: 3 + 0.85 * (4 - 3)
    assert summary["mean"] == 2.5
    assert summary["std"] == pytest.approx(math.sqrt(1.25))
    assert (summary["min"], summary["max"]) == (1.0, 4.0)


@pytest.mark.parametrize("samples", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_ms_rejects_bad_samples(samples: list[float]) -> None:
    with pytest.raises(ValueError, match="timing samples|no timing"):
        summarize_ms(samples)


@pytest.mark.parametrize(
    ("count", "distinct", "expected"),
    [
        (7, 3, [0, 1, 2, 1, 0, 1, 2]),
        (4, 1, [0, 0, 0, 0]),
        (5, 2, [0, 1, 0, 1, 0]),
        (0, 5, []),
    ],
)
def test_ping_pong_indices(count: int, distinct: int, expected: list[int]) -> None:
    assert ping_pong_indices(count, distinct) == expected


def test_match_run_counts_first_receipts_of_published_stamps() -> None:
    records = [
        {"t": "tips", "stamp": 100, "recv": 2_000_100},  # 2 ms
        {"t": "tips", "stamp": 100, "recv": 9_000_100},  # duplicate: first receipt counts
        {"t": "tips", "stamp": 200, "recv": 5_000_200},  # 5 ms
        {"t": "labels", "stamp": 300, "recv": 1_000_300},  # other topic
        {"t": "tips", "stamp": 999, "recv": 1_000_999},  # not published in this run
    ]
    received, latencies = match_run([100, 200, 300], records, "tips")
    assert received == 2
    assert sorted(latencies) == pytest.approx([2.0, 5.0])


def test_counter_deltas_between_two_diagnostics() -> None:
    records = [
        {"t": "diag", "recv": 10, "values": {"frames_received": "5", "dropped.superseded": "1"}},
        {"t": "diag", "recv": 20, "values": {"frames_received": "9", "dropped.superseded": "1"}},
        {"t": "diag", "recv": 30, "values": {"frames_received": "15", "dropped.superseded": "3"}},
    ]
    deltas = counter_deltas(records, start_ns=15, end_ns=30)
    assert deltas["frames_received"] == 10 and deltas["dropped.superseded"] == 2
    assert deltas["dropped.stale"] == 0
    assert counter_deltas(records, start_ns=30, end_ns=40) is None


def test_peak_search_doubles_then_bisects() -> None:
    tried: list[float] = []

    def fake_run(rate_hz: float, duration_s: float) -> dict:
        tried.append(rate_hz)
        received = round(rate_hz * duration_s) if rate_hz <= 40.0 else round(40.0 * duration_s)
        published = round(rate_hz * duration_s)
        return {
            "rate_hz": rate_hz,
            "published": published,
            "received": received,
            "dropped": published - received,
            "output_rate_hz": received / duration_s,
        }

    peak = _peak_search(fake_run, [7.5, 30.0], step_s=10.0, max_steps=5)
    # 30 clean -> 60 drops -> 45 drops -> 37.5 clean -> (37.5 + 45) / 2 = 41.25 drops
    assert tried == [30.0, 60.0, 45.0, 37.5, 41.25]
    assert peak["max_clean_rate_hz"] == 37.5
    assert peak["max_output_rate_hz"] == 40.0


@pytest.mark.parametrize(
    ("fps", "median_ms", "dds_p95", "dropped", "ratio", "expected"),
    [
        (30.0, 30.0, 50.0, 0, 5.0, [True, True, True, True, True]),
        (20.0, 50.0, 70.0, 3, 3.0, [False, False, False, False, False]),
        (25.0, 40.0, 60.0, 0, 4.0, [True, True, True, True, True]),  # bounds are inclusive
    ],
)
def test_evaluate_targets_table(
    fps: float, median_ms: float, dds_p95: float, dropped: int, ratio: float, expected: list
) -> None:
    report = {
        "meta": {"size_px": 512},
        "inprocess": {"throughput_fps": fps, "latency_ms": {"median": median_ms}},
        "dds": {
            "rates": [
                {
                    "rate_hz": 15.0,
                    "duration_s": 60.0,
                    "dropped": dropped,
                    "latency_ms": {"p95": dds_p95},
                }
            ]
        },  # fmt: skip
        "ratios": {"pipeline_over_attention_unet_eager": ratio},
    }
    targets = evaluate_targets(report)
    assert [t["passed"] for t in targets] == expected
    assert all(t["note"] == "" for t in targets)


def test_evaluate_targets_without_measurements_says_why() -> None:
    report = {
        "meta": {"size_px": 512},
        "inprocess": {"skipped": "no model"},
        "dds": {"skipped": "--skip-dds"},
        "torch_baselines": {"skipped": "--skip-torch"},
    }
    targets = evaluate_targets(report)
    assert [t["passed"] for t in targets] == [None] * 5
    assert [t["note"] for t in targets] == ["no model"] * 2 + ["--skip-dds"] * 2 + ["--skip-torch"]


def test_format_table_pads_columns() -> None:
    assert format_table(["a", "bbb"], [[1, 2], ["long", 3]]).splitlines() == [
        "a     bbb",
        "----  ---",
        "1     2",
        "long  3",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--providers", "gpu9"], "not ONNX Runtime providers"),
        (["--size", "100"], "multiple of 32"),
        (["--threads", "-1"], "expected >= 0"),
    ],
)
def test_bad_arguments_fail_with_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    model = make_random_onnx_model(tmp_path / "tiny.onnx", input_size=(SIZE, SIZE))
    args = _bench_args(["--quick", "--model", str(model), *argv])
    with pytest.raises(ValueError, match=message):
        args.func(args)


# ------------------------------------------------------------------ --content


@pytest.mark.parametrize("content", ["sim", "distractors", "noise"])
def test_bench_content_option_runs(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = make_random_onnx_model(tmp_path / "tiny.onnx", input_size=(SIZE, SIZE))
    out = tmp_path / "bench.json"
    args = _bench_args(
        ["--quick", "--model", str(model), "--size", str(SIZE), "--content", content,
         "--frames", "2", "--geometry-maps", "1", "--providers", "cpu", "--skip-dds",
         "--skip-torch", "--json", str(out)]
    )  # fmt: skip
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    assert report["meta"]["content"] == content
    inprocess = report["inprocess"]
    assert inprocess["content"] == content and inprocess["frames"] == 2
    for summary in inprocess["stages_ms"].values():
        assert summary["n"] == 2 and summary["median"] <= summary["p99"] <= summary["max"]
    assert set(inprocess["geometry_caps_hit"]) == set(GEOMETRY_CAPS)
    for name in GEOMETRY_CAPS:
        assert 0 <= inprocess["geometry_caps_frames"][name] <= 2
        assert inprocess["geometry_caps_hit"][name] >= inprocess["geometry_caps_frames"][name]
    maps = report["geometry_maps"]
    assert set(maps["kinds"]) == set(MAP_KINDS) and maps["repeats"] == 1
    assert maps["all"]["geometry_ms"]["n"] == len(MAP_KINDS)
    assert isinstance(maps["passed"], bool) and maps["target_p99_ms"] == 8.0
    printed = capsys.readouterr().out
    assert f"content {content}" in printed and "p99 ms" in printed
    assert "Geometry alone on adversarial maps" in printed


def test_bench_content_rejects_unknown_values() -> None:
    with pytest.raises(SystemExit):
        _bench_args(["--content", "angiograms"])


def test_geometry_maps_count_the_caps_that_bite() -> None:
    section = bench_geometry_maps(size=256, repeats=1)
    # saturated and noise maps are one blob: never skeletonized, always counted
    assert section["kinds"]["all_ones"]["caps_hit"]["wide_components"] == 1
    assert section["kinds"]["all_ones"]["wires"] == 0
    # hundreds of specks exceed the component cap
    assert section["kinds"]["tiny_blobs"]["caps_hit"]["wire_components"] > 0
    assert sum(section["caps_hit"].values()) == sum(
        sum(kind["caps_hit"].values()) for kind in section["kinds"].values()
    )
    with pytest.raises(ValueError, match="repeats"):
        bench_geometry_maps(repeats=0)
    with pytest.raises(ValueError, match="map kind"):
        adversarial_map("zebra")


# ------------------------------------------------------------------ every output subscribed


def test_dds_run_with_every_output_subscribed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fluoro_perception.bench.dds import CORE_TOPICS
    from fluoro_perception.topics import perception_topics

    model = make_random_onnx_model(tmp_path / "tiny.onnx", input_size=(SIZE, SIZE))
    out = tmp_path / "bench.json"
    args = _bench_args(
        ["--quick", "--model", str(model), "--size", str(SIZE), "--content", "distractors",
         "--subscribe", "all", "--rates", str(DDS_RATE_HZ), "--dds-duration", "1.0",
         "--frames", "2", "--geometry-maps", "0", "--providers", "cpu", "--skip-torch",
         "--no-peak-search", "--json", str(out)]
    )  # fmt: skip
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    assert report["meta"]["subscribe"] == "all"
    dds = report["dds"]
    assert dds["content"] == "distractors" and dds["subscribe"] == "all"
    assert dds["subscriber_qos"] == "reliable" and report["meta"]["subscriber_qos"] == "reliable"
    assert dds["subscribed_topics"] == list(perception_topics())
    (row,) = dds["rates"]
    assert row["published"] == row["received"] + row["dropped"]
    assert row["answered_percent"] == pytest.approx(100.0 * row["received"] / row["published"])
    assert set(row["topics"]) == set(perception_topics())
    assert row["core_topics"] == list(CORE_TOPICS)
    for item in row["topics"].values():
        assert 0 <= item["received"] <= row["published"]
        if item["received"]:
            _positive_summary(item["latency_ms"], item["received"])
    assert row["topics"]["tips"]["received"] == row["received"]
    assert 0 <= row["core_complete"] <= row["received"]
    if row["core_complete"]:
        core = row["latency_core_ms"]
        _positive_summary(core, row["core_complete"])
        # the core outputs are complete no earlier than their first one (tips) arrived
        assert core["median"] >= row["topics"]["tips"]["latency_ms"]["min"]
    split = row["node_split"]
    assert split is not None, "no node diagnostics in the run"
    assert split["core_ms"] > 0 and split["markers_ms"] >= 0
    assert split["publish_core_ms"] >= 0
    assert split["overlay_ms"] is None or split["overlay_ms"] >= 0
    assert 0 <= split["side_share_percent"] <= 100
    assert row["subscriber_cpu_percent"] >= 0 and row["publisher_cpu_percent"] >= 0
    printed = capsys.readouterr().out
    assert "answered %" in printed and "core p95 ms" in printed
    assert "per output topic" in printed and "overlay" in printed and "markers" in printed


def test_subscribed_topics_and_bad_modes() -> None:
    from fluoro_perception.bench.dds import subscribed_topics

    assert subscribed_topics("tip") == {
        "tips": "/fluoro/perception/guidewire/tips",
        "labels": "/fluoro/perception/labels",
    }
    every = subscribed_topics("all")
    assert every["overlay"] == "/fluoro/perception/overlay" and len(every) == 11
    with pytest.raises(ValueError, match="subscribe"):
        subscribed_topics("some")
    with pytest.raises(SystemExit):
        _bench_args(["--subscribe", "some"])
    with pytest.raises(SystemExit):
        _bench_args(["--subscriber-qos", "fast"])


def test_bad_node_param_fails_with_one_line(tmp_path: Path) -> None:
    model = make_random_onnx_model(tmp_path / "tiny.onnx", input_size=(SIZE, SIZE))
    args = _bench_args(["--quick", "--model", str(model), "--node-param", "overlay_enabled"])
    with pytest.raises(ValueError, match="NAME:=VALUE"):
        args.func(args)


def test_topic_latencies_core_is_the_last_core_output_of_each_frame() -> None:
    from fluoro_perception.bench.dds import topic_latencies

    ms = 1_000_000
    records = [
        {"t": "tips", "stamp": 0, "recv": 2 * ms},
        {"t": "guidewire_mask", "stamp": 0, "recv": 3 * ms},
        {"t": "stent_mask", "stamp": 0, "recv": 4 * ms},
        {"t": "labels", "stamp": 0, "recv": 5 * ms},
        {"t": "labels", "stamp": 0, "recv": 50 * ms},  # duplicate: the first receipt counts
        {"t": "overlay", "stamp": 0, "recv": 9 * ms},
        {"t": "tips", "stamp": 100 * ms, "recv": 101 * ms},  # masks never came: incomplete
        {"t": "diag", "recv": 6 * ms, "values": {}},
    ]
    keys = ["tips", "guidewire_mask", "stent_mask", "labels", "overlay", "markers"]
    result = topic_latencies([0, 100 * ms], records, keys)
    assert result["topics"]["tips"]["received"] == 2
    assert result["topics"]["labels"]["latency_ms"]["max"] == pytest.approx(5.0)
    assert result["topics"]["overlay"]["latency_ms"]["median"] == pytest.approx(9.0)
    assert result["topics"]["markers"] == {"received": 0, "latency_ms": None}
    assert result["core_complete"] == 1
    assert result["latency_core_ms"]["median"] == pytest.approx(5.0)


def test_node_split_from_stage_medians() -> None:
    from fluoro_perception.bench.dds import node_split

    values = {f"stage_p50_ms.{name}": "1.0" for name in
              ("preprocess", "inference", "decode", "geometry", "tracking", "masks")}  # fmt: skip
    values.update({"stage_p50_ms.total": "6.0", "stage_p50_ms.publish": "3.0",
                   "stage_p50_ms.markers": "1.0", "stage_p50_ms.overlay": "2.0"})  # fmt: skip
    split = node_split(values)
    # total is not a stage of its own: 6 pipeline stages + publish 3 - markers 1
    assert split["core_ms"] == pytest.approx(8.0) and split["publish_core_ms"] == pytest.approx(2.0)
    assert split["markers_ms"] == 1.0 and split["overlay_ms"] == 2.0
    assert split["side_share_percent"] == pytest.approx(100.0 * 3.0 / 11.0)
    assert node_split(None) is None and node_split({"stage_p50_ms.total": "6.0"}) is None


def test_node_publishes_core_outputs_before_overlay_and_markers(tmp_path: Path) -> None:
    """Same frame: tips, masks and labels are sent before its markers and its overlay."""
    import threading
    import time

    import numpy as np
    import rclpy
    from rclpy.parameter import Parameter

    from fluoro_perception.bench.dds import CORE_TOPICS
    from fluoro_perception.nodes import conversions as conv
    from fluoro_perception.nodes.segmentation_node import SegmentationNode

    model = make_random_onnx_model(tmp_path / "tiny.onnx", input_size=(SIZE, SIZE))
    context = rclpy.Context()
    rclpy.init(context=context)
    sent: list[str] = []
    lock = threading.Lock()

    class Recorder:
        def __init__(self, key: str) -> None:
            self.key = key

        def publish(self, _msg: object) -> None:
            with lock:
                sent.append(self.key)

    node = SegmentationNode(
        context=context,
        parameter_overrides=[
            Parameter("model.path", value=str(model)),
            Parameter("model.providers", value=["CPUExecutionProvider"]),
            Parameter("model.warmup_runs", value=0),
        ],
    )
    real_outputs = node._outputs
    try:
        assert node._state_machine.current_state[1] == "active"  # autostart
        node._outputs = {key: Recorder(key) for key in real_outputs}
        image = np.full((SIZE, SIZE), 200, np.uint8)
        for _ in range(3):
            with lock:
                sent.clear()
            msg = conv.image_to_msg(image, "mono8", conv.make_header(time.time_ns(), "bench"))
            node._process(msg, time.monotonic())  # as the worker does
            deadline = time.monotonic() + 20.0
            while time.monotonic() < deadline:
                with lock:
                    if "overlay" in sent:
                        break
                time.sleep(0.01)
            with lock:
                order = list(sent)
            assert "overlay" in order and "markers" in order, order
            last_core = max(order.index(key) for key in CORE_TOPICS)
            assert last_core < order.index("markers") and last_core < order.index("overlay")
        _level, _message, values = node.diagnostics_values()
        assert float(values["stage_p50_ms.markers"]) >= 0
        assert float(values["stage_p50_ms.overlay"]) > 0
        assert float(values["stage_p50_ms.publish"]) >= float(values["stage_p50_ms.markers"])
    finally:
        node._outputs = real_outputs
        node.destroy_node()
        rclpy.try_shutdown(context=context)
