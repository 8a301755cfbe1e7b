"""Overload (input at twice the node's capacity) and a short soak over DDS.

The long versions are the ``fluoro-perception soak`` command (20,000 frames; ``--overload``
for 60 s at twice the capacity); docs/reliability.md has their figures. Here:

* overload in one process (~10 s): the node's pipeline is slowed to a known processing
  time, frames arrive at twice the measured capacity; latency stays within two
  processing times plus scheduling slack (newest-frame policy), every received frame is
  accounted for (processed or dropped by reason), drops are reported on /diagnostics,
  outputs keep input order, memory does not grow;
* a short soak (a few hundred frames) through three processes over DDS with the real
  node ``main``: no exception, no drop at a modest rate, bounded RSS growth.
"""

from __future__ import annotations

import time

import pytest
from _node_harness import base_overrides, diagnostics_values, image_msg, wait_for
from rclpy.qos import ReliabilityPolicy

from fluoro_perception.cli.soak import (
    check_targets,
    count_exceptions,
    format_report,
    rss_growth_mb,
    rss_kib,
    soak,
    worker_ms,
    write_grey_level_model,
)
from fluoro_perception.nodes import conversions as conv

PROCESSING_S = 0.04  # [s] added to every frame: a known node capacity (< 25 Hz)
CALIBRATION_S = 2.0
OVERLOAD_S = 8.0
SOAK_FRAMES = 250
SOAK_RATE_HZ = 12.5
#: generous bounds for a loaded 2-core CI machine (the soak command checks 20 MB)
TEST_RSS_GROWTH_MB = 50.0


def test_rss_growth_is_measured_after_the_warm_up() -> None:
    samples = [(0.0, 500_000), (1.0, 102_400), (2.0, 112_640), (3.0, 107_520)]
    figures = rss_growth_mb(samples, after_s=1.0)
    assert figures == {
        "baseline_mb": 100.0,
        "final_mb": 105.0,
        "peak_mb": 110.0,
        "growth_mb": 5.0,
        "peak_growth_mb": 10.0,
        "samples": 3,
    }
    assert rss_growth_mb(samples, after_s=2.5) is None  # one sample: no figure
    assert rss_growth_mb(samples, after_s=1.0, until_s=2.0)["final_mb"] == 110.0


def test_exceptions_are_counted_from_the_log() -> None:
    log = (
        "[WARN] dropped frame (processing_error: bad)\n"
        "Traceback (most recent call last):\n  File x\nValueError: y\n"
        "[INFO] configured\n"
    )
    assert count_exceptions(log) == 2
    assert count_exceptions("[INFO] all good\n") == 0


def test_soak_targets_are_checked() -> None:
    good = {
        "mode": "nominal",
        "rss": {"growth_mb": 3.0},
        "exceptions": 0,
        "node_alive": True,
        "dropped": 0,
        "node_counters": {},
    }
    assert check_targets(good) == []
    bad = {**good, "rss": {"growth_mb": 25.0}, "exceptions": 1, "node_alive": False, "dropped": 2}
    failures = check_targets(bad)
    assert len(failures) == 4 and "25.0 MB" in failures[0]
    assert check_targets({**good, "mode": "overload"}) == [
        "overload: no superseded drops counted by the node"
    ]
    assert check_targets({**good, "node_counters": {"dropped.processing_error": 2}}) == [
        "2 frame(s) dropped as processing_error"
    ]
    weak_overload = {
        **good,
        "mode": "overload",
        "node_counters": {"dropped.superseded": 5},
        "overload_factor": 1.2,
    }
    (failure,) = check_targets(weak_overload)
    assert "only 1.20x the node's capacity" in failure


def test_worker_time_comes_from_the_last_complete_diagnostics() -> None:
    records = [
        {"t": "diag", "values": {"stage_p50_ms.total": "4.0", "stage_p50_ms.publish": "1.0"}},
        {"t": "tips", "stamp": 1, "recv": 2},
        {"t": "diag", "values": {"stage_p50_ms.total": "8.5", "stage_p50_ms.publish": "1.5"}},
        {"t": "diag", "values": {"frames_processed": "0"}},  # before the first frame
    ]
    assert worker_ms(records) == 10.0
    assert worker_ms([{"t": "tips", "stamp": 1, "recv": 2}]) is None


def test_soak_rejects_bad_arguments(tmp_path) -> None:
    with pytest.raises(ValueError, match="frames=0"):
        soak(tmp_path / "m.onnx", frames=0)
    with pytest.raises(ValueError, match="rate_hz=0"):
        soak(tmp_path / "m.onnx", rate_hz=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        soak(tmp_path / "absent.onnx", frames=10)


@pytest.mark.ros
def test_overload_at_twice_capacity_keeps_latency_bounded_and_counts_drops(
    harness_factory, grey_model
) -> None:
    harness = harness_factory(
        base_overrides(grey_model, **{"qos.input": "sensor_data"}, max_age_s=5.0),
        input_reliability=ReliabilityPolicy.BEST_EFFORT,
    )
    node = harness.node
    stats = node.stats
    harness.publish_until(lambda: harness.messages("labels"), "first output")
    original_process = node._pipeline.process

    def slow_process(*args, **kwargs):
        time.sleep(PROCESSING_S)  # a heavier model
        return original_process(*args, **kwargs)

    node._pipeline.process = slow_process

    def publish_for(duration_s: float, rate_hz: float) -> list[int]:
        stamps, start = [], time.perf_counter()
        for index in range(round(duration_s * rate_hz)):
            pause = start + index / rate_hz - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            stamps.append(harness.now_ns())
            harness.publisher.publish(image_msg(stamps[-1]))
        return stamps

    processed_before = stats.frames_processed
    publish_for(CALIBRATION_S, 100.0)
    time.sleep(0.3)
    capacity_hz = (stats.frames_processed - processed_before) / CALIBRATION_S
    assert 0 < capacity_hz < 1.0 / PROCESSING_S + 1

    rss_before = rss_kib_self()
    received_before, processed_before = stats.frames_received, stats.frames_processed
    drops_before = sum(stats.drops.values())
    superseded_before = stats.drops["superseded"]
    stats._latency_ms.clear()  # latency of the overload phase only
    stamps = publish_for(OVERLOAD_S, 2.0 * capacity_hz)
    time.sleep(0.5)  # the last waiting frame is processed (or would have been counted)
    rss_after = rss_kib_self()

    received = stats.frames_received - received_before
    processed = stats.frames_processed - processed_before
    dropped = sum(stats.drops.values()) - drops_before
    superseded = stats.drops["superseded"] - superseded_before
    # at least a third of the frames could not be processed at twice the capacity
    assert superseded >= received // 3, (received, processed, superseded)
    assert received == processed + dropped  # every received frame is accounted for
    assert processed >= 0.6 * capacity_hz * OVERLOAD_S  # the node kept working at capacity
    values = stats.snapshot(time.monotonic())
    # newest-frame policy: a frame waits at most one processing time, then is processed
    processing_ms = 1e3 / capacity_hz
    assert values["latency_p95_ms"] <= 2.5 * processing_ms + 20, (values, processing_ms)
    # (no bound on the single worst frame: one scheduler hiccup on a loaded 2-core machine
    # exceeds any fixed multiple; `fluoro-perception soak` reports the maximum instead)
    # drops are reported on /diagnostics
    wait_for(
        lambda: any(
            int(v.get("dropped.superseded", "0")) >= superseded_before + superseded
            for v in diagnostics_values(harness)
        ),
        "superseded drops on /diagnostics",
    )
    # outputs: input stamps, input order
    published = [conv.stamp_to_ns(m.header.stamp) for m in harness.messages("labels")]
    overload_outputs = [s for s in published if s >= stamps[0]]
    assert set(overload_outputs) <= set(stamps)
    assert overload_outputs == sorted(overload_outputs)
    growth_mb = (rss_after - rss_before) / 1024.0
    assert growth_mb < TEST_RSS_GROWTH_MB, growth_mb


def rss_kib_self() -> int:
    import os

    value = rss_kib(os.getpid())
    assert value is not None, "/proc/<pid>/status is not readable here"
    return value


@pytest.mark.ros
@pytest.mark.slow
def test_short_soak_over_dds_has_no_exception_no_drop_and_bounded_memory(tmp_path) -> None:
    model = write_grey_level_model(tmp_path / "grey.onnx", 64)
    report = soak(
        model,
        frames=SOAK_FRAMES,
        rate_hz=SOAK_RATE_HZ,
        size=64,
        warmup_frames=50,
        node_params={"model.warmup_runs": "0"},
    )
    text = format_report(report)
    assert report["published"] == SOAK_FRAMES, text
    assert report["exceptions"] == 0 and report["node_alive"], text
    assert report["dropped"] == 0 and report["received"] == SOAK_FRAMES, text
    counters = report["node_counters"]
    assert counters is not None and counters["frames_processed"] == SOAK_FRAMES, text
    assert report["rss"] is not None and report["rss"]["growth_mb"] < TEST_RSS_GROWTH_MB, text
    failures = [f for f in check_targets(report) if "RSS" not in f]
    assert failures == [], failures


def test_soak_is_a_registered_subcommand_with_its_options() -> None:
    from fluoro_perception.cli.main import SUBCOMMANDS, build_parser, main
    from fluoro_perception.cli.soak import run_soak

    assert SUBCOMMANDS["soak"] == "soak"
    args = build_parser().parse_args(
        ["soak", "--frames", "20000", "--rate", "15", "--size", "128", "--overload"]
    )
    assert (args.frames, args.rate, args.size, args.overload, args.overload_s) == (
        20000,
        15.0,
        128,
        True,
        60.0,
    )
    assert args.func is run_soak
    # a malformed --param is refused before any process starts (exit status 2, one line)
    assert main(["soak", "--frames", "5", "--param", "max_age_s=1.0"]) == 2
