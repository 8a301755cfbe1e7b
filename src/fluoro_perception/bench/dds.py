"""Latency and dropped frames across processes over real DDS.

Three processes on one machine, as on the robot::

    publisher (this module, role "publisher")  --/fluoro/image_raw-->
    segmentation_node (its own process, its real ``main``)  --/fluoro/perception/...-->
    subscriber (this module, role "subscriber")

* The publisher pre-renders simulator frames and publishes them at a fixed rate on an
  absolute schedule (no drift), stamping each header with the wall clock just before
  ``publish``. It is a small server: the orchestrator sends one JSON command per line
  on its stdin (``run`` at a rate for a duration, ``quit``), it answers one ``RESULT``
  line with the stamps it published, so the rates and the peak search share one
  process and one discovery.
* The subscriber records, for every message of ``perception/guidewire/tips`` (the first
  pose output, published for every fresh frame) and ``perception/labels`` (the last image
  output) - or, with ``subscribe="all"``, of EVERY output topic of the node
  (:func:`fluoro_perception.topics.perception_topics`: masks, labels, poses, overlay,
  markers), as a viewer listening to everything would - the header stamp and its own
  wall-clock receive time, plus the node's ``/diagnostics`` values, one JSON line each.
* Latency = receive time - header stamp (one clock: same machine). Dropped frames =
  published - received on the tips topic, per run, matched by stamp; answered % = the
  received share; the frames of a short warm-up before each run are published but not
  counted. With every topic subscribed, ``latency_core_ms`` is per frame the time until
  all of its always-published core outputs (:data:`CORE_TOPICS`) have arrived, and each
  topic has its own count and latency (the overlay and markers among them).
* The node's split between core outputs and overlay/markers comes from its stage
  timings on ``/diagnostics`` (``stage_p50_ms.<stage>`` of the last message of the run):
  pipeline stages and ``publish`` - ``markers`` on the worker thread, ``overlay`` on the
  overlay thread (see :func:`node_split`).
* The publisher sends frames of ``content`` (:data:`fluoro_perception.bench.CONTENTS`).

Every process runs with one random ``ROS_DOMAIN_ID`` (1-101) and
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` so that parallel runs never hear each other.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fluoro_perception.bench import CONTENTS
from fluoro_perception.bench.report import summarize_ms
from fluoro_perception.topics import perception_topics

NAMESPACE = "/fluoro"
IMAGE_TOPIC = f"{NAMESPACE}/image_raw"
TIPS_TOPIC = f"{NAMESPACE}/perception/guidewire/tips"
LABELS_TOPIC = f"{NAMESPACE}/perception/labels"
DIAGNOSTICS_TOPIC = "/diagnostics"
NODE_NAME = "segmentation_node"
RESULT_PREFIX = "RESULT "
READY_LINE = "READY"
#: Node drop counters read back from /diagnostics (``dropped.<reason>``).
NODE_COUNTERS = (
    "frames_received",
    "frames_processed",
    "dropped.superseded",
    "dropped.stale",
    "dropped.out_of_order",
    "dropped.processing_error",
    "tips_withheld",
    "overlays_skipped",
)
#: What the subscriber listens to: ``tip`` = the tips and labels topics, ``all`` = every
#: output topic of the node.
SUBSCRIBE_MODES = ("tip", "all")
#: Output keys the node publishes for EVERY fresh frame (the core outputs; the other
#: pose topics depend on what was found, overlay and markers are for people).
CORE_TOPICS = ("tips", "guidewire_mask", "stent_mask", "labels")
#: Node stages of the worker thread before its first publish (``FrameResult.timings_ms``).
PIPELINE_STAGE_KEYS = ("preprocess", "inference", "decode", "geometry", "tracking", "masks")
_NS_PER_S = 1_000_000_000
_MAX_RATE_HZ = 200.0


# ------------------------------------------------------------------ publisher process


def _publisher_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="fluoro_perception.bench.dds publisher")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--distinct-frames", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--content", default="sim", choices=CONTENTS)
    parser.add_argument("--qos", default="sensor_data", choices=("sensor_data", "reliable"))
    parser.add_argument("--depth", type=int, default=1)
    args = parser.parse_args(argv)

    import rclpy
    from sensor_msgs.msg import Image

    from fluoro_perception.bench.inprocess import FRAME_ID, content_images, ping_pong_indices
    from fluoro_perception.nodes import conversions as conv
    from fluoro_perception.nodes.segmentation_node import qos_profile

    images = content_images(args.content, args.distinct_frames, args.size, args.seed)
    messages = [
        conv.image_to_msg(image, "mono8", conv.make_header(0, FRAME_ID)) for image in images
    ]
    rclpy.init(args=[])
    node = rclpy.create_node("fluoro_bench_publisher")
    publisher = node.create_publisher(Image, IMAGE_TOPIC, qos_profile(args.qos, args.depth))
    print(READY_LINE, flush=True)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("cmd") == "quit":
                break
            rate_hz = float(command["rate_hz"])
            deadline = time.monotonic() + float(command.get("wait_s", 30.0))
            while publisher.get_subscription_count() < 1 and time.monotonic() < deadline:
                time.sleep(0.05)  # the node subscribes only once it is active
            if publisher.get_subscription_count() < 1:
                print(
                    RESULT_PREFIX + json.dumps({"error": "no subscriber on " + IMAGE_TOPIC}),
                    flush=True,
                )
                continue
            warmup = round(rate_hz * float(command["warmup_s"]))
            count = max(1, round(rate_hz * float(command["duration_s"])))
            order = ping_pong_indices(warmup + count, len(messages))
            stamps_ns: list[int] = []
            warmup_stamps_ns: list[int] = []
            late_ms: list[float] = []
            start = time.perf_counter() + 0.05
            for index, frame_index in enumerate(order):
                # absolute schedule: a late frame does not shift the ones after it
                scheduled = start + index / rate_hz
                pause = scheduled - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                message = messages[frame_index]
                stamp_ns = time.time_ns()
                message.header.stamp = conv.ns_to_stamp(stamp_ns)
                publisher.publish(message)
                late_ms.append((time.perf_counter() - scheduled) * 1e3)
                (stamps_ns if index >= warmup else warmup_stamps_ns).append(stamp_ns)
            span_s = (stamps_ns[-1] - stamps_ns[0]) / _NS_PER_S if len(stamps_ns) > 1 else 0.0
            result = {
                "rate_hz": rate_hz,
                "stamps_ns": stamps_ns,
                "warmup_stamps_ns": warmup_stamps_ns,
                "achieved_rate_hz": (len(stamps_ns) - 1) / span_s if span_s > 0 else None,
                "publish_late_ms": summarize_ms(late_ms),
            }
            print(RESULT_PREFIX + json.dumps(result), flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# ------------------------------------------------------------------ subscriber process


def _subscriber_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="fluoro_perception.bench.dds subscriber")
    parser.add_argument("--records", type=Path, required=True)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--stop", type=Path, required=True)
    parser.add_argument("--qos", default="reliable", choices=("sensor_data", "reliable"))
    parser.add_argument("--max-s", type=float, default=3600.0)
    parser.add_argument("--subscribe", default="tip", choices=SUBSCRIBE_MODES)
    args = parser.parse_args(argv)

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    from fluoro_perception.nodes.segmentation_node import OUTPUT_TOPICS, qos_profile

    rclpy.init(args=[])
    node = rclpy.create_node("fluoro_bench_subscriber")
    stream = open(args.records, "a", encoding="utf-8")  # closed in finally

    def record(kind: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            received_ns = time.time_ns()
            # a MarkerArray has no header: its first marker (DELETEALL) carries the frame's
            header = msg.markers[0].header if kind == "markers" else msg.header
            stamp_ns = int(header.stamp.sec) * _NS_PER_S + int(header.stamp.nanosec)
            stream.write(json.dumps({"t": kind, "stamp": stamp_ns, "recv": received_ns}) + "\n")
            stream.flush()

        return callback

    def on_diagnostics(msg: Any) -> None:
        for status in msg.status:
            if status.name.endswith(NODE_NAME):
                values = {kv.key: kv.value for kv in status.values}
                stream.write(
                    json.dumps({"t": "diag", "recv": time.time_ns(), "values": values}) + "\n"
                )
                stream.flush()

    output_qos = qos_profile(args.qos, 50)
    subscriptions = [
        node.create_subscription(OUTPUT_TOPICS[key][1], topic, record(key), output_qos)
        for key, topic in subscribed_topics(args.subscribe).items()
    ]
    node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, on_diagnostics, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    give_up = time.monotonic() + args.max_s
    try:
        while not args.stop.exists() and time.monotonic() < give_up:
            executor.spin_once(timeout_sec=0.05)
            if not args.ready.exists() and all(s.get_publisher_count() for s in subscriptions):
                args.ready.write_text("ready\n")
    finally:
        stream.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# ------------------------------------------------------------------ orchestrator


def subscribed_topics(subscribe: str) -> dict[str, str]:
    """Output key -> absolute topic the subscriber listens to in mode ``subscribe``."""
    if subscribe not in SUBSCRIBE_MODES:
        raise ValueError(f"subscribe {subscribe!r}; expected one of {list(SUBSCRIBE_MODES)}")
    topics = {key: topic for key, (topic, _type) in perception_topics(NAMESPACE).items()}
    if subscribe == "tip":
        return {"tips": topics["tips"], "labels": topics["labels"]}
    return topics


def read_records(path: Path) -> list[dict[str, Any]]:
    """The subscriber's JSON lines (a half-written last line is skipped)."""
    records = []
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the subscriber may be writing this very line
    return records


def match_run(
    published_ns: Sequence[int], records: Sequence[Mapping[str, Any]], kind: str
) -> tuple[int, list[float]]:
    """Frames of one run that came back on one output, and their latencies.

    Parameters
    ----------
    published_ns : sequence of int
        Header stamps the publisher sent in the run [ns].
    records : sequence of mapping
        Subscriber records (``t``, ``stamp``, ``recv``).
    kind : str
        ``"tips"`` or ``"labels"``.

    Returns
    -------
    (int, list of float)
        Number of published stamps received at least once, and for each its latency
        ``first receive - stamp`` [ms].
    """
    wanted = set(published_ns)
    first_receive: dict[int, int] = {}
    for item in records:
        if item.get("t") == kind and item["stamp"] in wanted and item["stamp"] not in first_receive:
            first_receive[item["stamp"]] = item["recv"]
    latencies = [(recv - stamp) / 1e6 for stamp, recv in first_receive.items()]
    return len(first_receive), latencies


def first_receipts(
    published_ns: Sequence[int], records: Sequence[Mapping[str, Any]]
) -> dict[str, dict[int, int]]:
    """Output key -> {published stamp: first receive time [ns]} of one run (all kinds)."""
    wanted = set(published_ns)
    first: dict[str, dict[int, int]] = {}
    for item in records:
        kind = item.get("t")
        if kind == "diag" or item.get("stamp") not in wanted:
            continue
        first.setdefault(kind, {}).setdefault(item["stamp"], item["recv"])
    return first


def topic_latencies(
    published_ns: Sequence[int], records: Sequence[Mapping[str, Any]], topics: Sequence[str]
) -> dict[str, Any]:
    """Per output and for the core outputs together: frames that came back, latencies.

    Returns
    -------
    dict
        ``topics`` {key: {``received`` (published stamps received at least once),
        ``latency_ms`` (summary of first receive - stamp, None when none)}} for each of
        ``topics``; ``core_complete`` (frames for which every :data:`CORE_TOPICS` output
        that is in ``topics`` arrived) and ``latency_core_ms`` (per such frame the LAST
        of those first receipts - stamp: when the frame's core outputs were all there).
    """
    first = first_receipts(published_ns, records)
    per_topic: dict[str, Any] = {}
    for key in topics:
        receipts = first.get(key, {})
        latencies = [(recv - stamp) / 1e6 for stamp, recv in receipts.items()]
        per_topic[key] = {
            "received": len(receipts),
            "latency_ms": summarize_ms(latencies) if latencies else None,
        }
    core = [key for key in CORE_TOPICS if key in topics]
    complete = []
    for stamp in published_ns:
        receipts = [first.get(key, {}).get(stamp) for key in core]
        if core and all(r is not None for r in receipts):
            complete.append((max(receipts) - stamp) / 1e6)
    return {
        "topics": per_topic,
        "core_topics": core,
        "core_complete": len(complete),
        "latency_core_ms": summarize_ms(complete) if complete else None,
    }


def last_diagnostics(
    records: Sequence[Mapping[str, Any]], start_ns: int, end_ns: int
) -> dict[str, str] | None:
    """Values of the last node diagnostics received in ``(start_ns, end_ns]`` (None: none)."""
    inside = [r for r in records if r.get("t") == "diag" and start_ns < r["recv"] <= end_ns]
    return dict(inside[-1]["values"]) if inside else None


def node_split(values: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The node's time per frame on core outputs vs overlay and markers [ms], from its
    diagnostics ``stage_p50_ms.<stage>`` values (medians over its last 200 frames).

    * ``core_ms``: the worker thread until the core outputs are sent = pipeline stages
      (:data:`PIPELINE_STAGE_KEYS`) + ``publish`` - ``markers``;
    * ``markers_ms``: the worker's markers, built and sent after the core outputs (they
      delay the worker's NEXT frame, not this one's core outputs);
    * ``overlay_ms``: rendering and sending the overlay on the overlay thread (beside the
      worker: it competes for the CPU, it is never waited for);
    * ``side_share_percent``: (markers + overlay) / (core + markers + overlay).

    None when there are no stage values (no diagnostics, or a node that predates the
    ``markers`` stage: then ``markers_ms`` and ``overlay_ms`` are None).
    """
    if not values:
        return None

    def stage(name: str) -> float | None:
        try:
            number = float(values[f"stage_p50_ms.{name}"])
        except (KeyError, ValueError):
            return None
        return number if number == number else None  # NaN -> None

    stages = {name: stage(name) for name in (*PIPELINE_STAGE_KEYS, "publish", "markers", "overlay")}
    if stages["publish"] is None:
        return None
    pipeline = sum(v for k, v in stages.items() if k in PIPELINE_STAGE_KEYS and v is not None)
    markers, overlay = stages["markers"], stages["overlay"]
    core = pipeline + stages["publish"] - (markers or 0.0)
    side = (markers or 0.0) + (overlay or 0.0)
    return {
        "stages_p50_ms": stages,
        "core_ms": core,
        "publish_core_ms": stages["publish"] - (markers or 0.0),
        "markers_ms": markers,
        "overlay_ms": overlay,
        "side_share_percent": 100.0 * side / (core + side) if core + side > 0 else None,
    }


def counter_deltas(
    records: Sequence[Mapping[str, Any]], start_ns: int, end_ns: int
) -> dict[str, int] | None:
    """Change of the node's diagnostics counters between two times [ns].

    Uses the last diagnostics message received at or before each time; None when there
    is none after ``start_ns``.
    """
    diagnostics = [r for r in records if r.get("t") == "diag"]
    before = [r for r in diagnostics if r["recv"] <= start_ns]
    after = [r for r in diagnostics if start_ns < r["recv"] <= end_ns]
    if not after:
        return None
    last = after[-1]["values"]
    first = before[-1]["values"] if before else {}

    def value(values: Mapping[str, str], key: str) -> int:
        try:
            return int(float(values.get(key, "0")))
        except ValueError:
            return 0

    return {key: value(last, key) - value(first, key) for key in NODE_COUNTERS}


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU time of another process [s] from ``/proc`` (None off Linux)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    # after the command name: state is field 3; utime, stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def isolated_dds_env(domain_id: int | None = None) -> dict[str, str]:
    """Environment for child processes on their own DDS domain, localhost-only discovery.

    ``domain_id`` None draws one at random in 1..101, so parallel runs never hear each
    other; output is unbuffered so logs are complete when a process is killed.
    """
    if domain_id is None:
        domain_id = random.SystemRandom().randint(1, 101)
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONUNBUFFERED="1",
    )
    return env


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Processes:
    """The node, subscriber and publisher processes of one DDS bench (cleaned up on exit)."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.started: list[tuple[str, subprocess.Popen, Path]] = []
        self.publisher: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def start(self, name: str, command: list[str], **kwargs: Any) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        stream = open(log, "w", encoding="utf-8")  # the child keeps its own copy
        stdout = kwargs.pop("stdout", stream)
        process = subprocess.Popen(
            command, env=self.env, stdout=stdout, stderr=stream, text=True, **kwargs
        )
        stream.close()
        self.started.append((name, process, log))
        return process

    def start_publisher(self, command: list[str]) -> None:
        self.publisher = self.start(
            "publisher", command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1
        )
        stdout = self.publisher.stdout

        def pump() -> None:
            for line in stdout:
                self._lines.put(line.rstrip("\n"))
            self._lines.put(None)

        threading.Thread(target=pump, name="bench_publisher_stdout", daemon=True).start()

    def check_alive(self) -> None:
        for name, process, log in self.started:
            if process.poll() is not None:
                raise RuntimeError(
                    f"DDS bench: the {name} process exited with code {process.returncode}; "
                    f"last lines of {log}:\n{log_tail(log)}"
                )

    def publisher_line(self, prefix: str, timeout_s: float) -> str:
        """The next publisher stdout line starting with ``prefix`` (others are skipped)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                self.check_alive()
                continue
            if line is None:
                self.check_alive()
                raise RuntimeError("DDS bench: the publisher closed its output unexpectedly")
            if line.startswith(prefix):
                return line[len(prefix) :]
        raise RuntimeError(
            f"DDS bench: no {prefix.strip()!r} line from the publisher in {timeout_s:.0f} s"
        )

    def send(self, command: Mapping[str, Any]) -> None:
        if self.publisher is None or self.publisher.stdin is None:
            raise RuntimeError("DDS bench: the publisher is not running")
        self.publisher.stdin.write(json.dumps(command) + "\n")
        self.publisher.stdin.flush()

    def stop(self) -> None:
        if self.publisher is not None and self.publisher.poll() is None:
            try:
                self.send({"cmd": "quit"})
                self.publisher.stdin.close()
            except (OSError, RuntimeError):
                pass  # already gone: terminated below
        for _name, process, _log in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # the node's main shuts down cleanly
        for _name, process, _log in self.started:
            try:
                process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5.0)


def bench_dds(
    model_path: str | Path,
    *,
    rates_hz: Sequence[float] = (7.5, 15.0, 30.0),
    duration_for_rate: Callable[[float], float] | None = None,
    warmup_s: float = 1.0,
    size: int = 512,
    content: str = "sim",
    subscribe: str = "tip",
    node_params: Sequence[str] = (),
    subscriber_qos: str = "reliable",
    providers: Sequence[str] = ("CPUExecutionProvider",),
    intra_op_threads: int = 0,
    peak_search: bool = True,
    peak_step_s: float = 5.0,
    peak_max_steps: int = 5,
    drain_s: float = 1.2,
    startup_timeout_s: float = 120.0,
    domain_id: int | None = None,
    log: Callable[[str], None] | None = None,
    keep_logs: str | Path | None = None,
) -> dict[str, Any]:
    """Run the three-process DDS benchmark.

    Parameters
    ----------
    model_path : str or Path
        Exported ONNX model the node loads (``model.path``).
    rates_hz : sequence of float
        Publishing rates, run in order [Hz].
    duration_for_rate : callable or None
        Rate [Hz] -> measured duration [s]; default 60 s at 15 Hz, 20 s otherwise.
    warmup_s : float
        Frames published before each run and not counted [s].
    size : int
        Frame height and width [px] (mono8).
    content : str
        Frames the publisher sends, one of :data:`fluoro_perception.bench.CONTENTS`.
    subscribe : str
        ``tip`` (the tips and labels topics) or ``all`` (every output topic of the node,
        overlay and markers included), :data:`SUBSCRIBE_MODES`.
    node_params : sequence of str
        Extra ``NAME:=VALUE`` parameters of the node (e.g. ``overlay_enabled:=false``).
    subscriber_qos : str
        QoS of the subscriber's output readers: ``reliable`` (default, as the node
        publishes) or ``sensor_data`` (best effort: a sample lost on the way is gone
        instead of repaired late).
    providers : sequence of str
        ``model.providers`` of the node.
    intra_op_threads : int
        ``model.intra_op_threads`` of the node (0 = ORT default).
    peak_search : bool
        After the fixed rates, search the highest rate without dropped frames: double
        the rate while clean, then bisect between the last clean and first dropping
        rate, at most ``peak_max_steps`` steps of ``peak_step_s`` seconds.
    drain_s : float
        Wait after each run before counting what came back [s] (> the node's
        ``max_age_s`` of 0.5 s plus one diagnostics period).
    startup_timeout_s : float
        Time allowed for the node to load the model and all processes to discover each
        other [s].
    domain_id : int or None
        ``ROS_DOMAIN_ID`` of the three processes; None = random in 1-101.
    log : callable or None
        Progress lines (e.g. ``print``).
    keep_logs : str, Path or None
        Folder that receives the three processes' logs and the subscriber's records
        (``records.jsonl``) at the end; None = discard them.

    Returns
    -------
    dict
        ``domain_id``, ``rates`` (one row per rate: ``rate_hz``, ``duration_s``,
        ``published``, ``received``, ``dropped`` (= published - received),
        ``answered_percent`` (100 received / published), ``latency_ms`` (tips topic, None
        when nothing came back), ``latency_last_output_ms`` (labels topic),
        ``latency_core_ms``, ``core_complete``, ``core_topics`` and ``topics`` (per
        subscribed output, :func:`topic_latencies`), ``output_rate_hz`` (received /
        duration), ``achieved_rate_hz`` (publisher), ``publish_late_ms`` (publisher behind
        schedule), ``node_cpu_percent``, ``subscriber_cpu_percent``,
        ``publisher_cpu_percent``, ``node_counters`` (diagnostics deltas), ``node_split``
        (:func:`node_split`)), ``peak`` (``steps``, ``max_clean_rate_hz``,
        ``max_output_rate_hz``), ``content``, ``subscribe``, ``subscribed_topics``,
        ``skipped`` (None).

    Raises
    ------
    RuntimeError
        A process died or did not come up in time (the message carries its log tail).
    """
    say = log or (lambda _line: None)
    if duration_for_rate is None:

        def duration_for_rate(rate: float) -> float:
            return 60.0 if abs(rate - 15.0) < 1e-9 else 20.0

    bad_rates = [r for r in rates_hz if not 0 < float(r) <= _MAX_RATE_HZ]
    if bad_rates:
        raise ValueError(f"rates {bad_rates} Hz; expected rates in (0, {_MAX_RATE_HZ:g}] Hz")
    if content not in CONTENTS:
        raise ValueError(f"content {content!r}; expected one of {list(CONTENTS)}")
    topics = subscribed_topics(subscribe)
    env = isolated_dds_env(domain_id)
    domain_id = int(env["ROS_DOMAIN_ID"])
    provider_list = "[" + ", ".join(f"'{p}'" for p in providers) + "]"
    module = "fluoro_perception.bench.dds"
    with tempfile.TemporaryDirectory(prefix="fluoro_bench_dds_") as temporary:
        workdir = Path(temporary)
        records_path, ready_path, stop_path = (
            workdir / "records.jsonl",
            workdir / "subscriber.ready",
            workdir / "subscriber.stop",
        )
        processes = Processes(workdir, env)
        try:
            processes.start(
                "subscriber",
                [sys.executable, "-m", module, "subscriber", "--records", str(records_path),
                 "--ready", str(ready_path), "--stop", str(stop_path),
                 "--subscribe", subscribe, "--qos", subscriber_qos],
            )  # fmt: skip
            subscriber_pid = processes.started[-1][1].pid
            processes.start(
                "segmentation_node",
                [sys.executable, "-m", "fluoro_perception.nodes.segmentation_node", "--ros-args",
                 "-p", f"model.path:={Path(model_path).resolve()}",
                 "-p", f"model.providers:={provider_list}",
                 "-p", f"model.intra_op_threads:={int(intra_op_threads)}",
                 *[arg for item in node_params for arg in ("-p", item)]],
            )  # fmt: skip
            node_pid = processes.started[-1][1].pid
            processes.start_publisher(
                [sys.executable, "-m", module, "publisher", "--size", str(size),
                 "--content", content]
            )  # fmt: skip
            assert processes.publisher is not None
            side_pids = {"subscriber": subscriber_pid, "publisher": processes.publisher.pid}
            say(f"dds: ROS_DOMAIN_ID {domain_id}; waiting for the node to load the model")
            deadline = time.monotonic() + startup_timeout_s
            processes.publisher_line(READY_LINE, startup_timeout_s)
            node_log = workdir / "segmentation_node.log"
            while not ready_path.exists():
                processes.check_alive()
                if "configure failed" in node_log.read_text(errors="replace"):
                    # a failed model load leaves the node alive but inactive: say why now
                    raise RuntimeError(
                        f"DDS bench: segmentation_node did not start:\n{log_tail(node_log)}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"DDS bench: the node's outputs were not discovered in {startup_timeout_s:.0f} s; "
                        f"node log:\n{log_tail(workdir / 'segmentation_node.log')}"
                    )
                time.sleep(0.1)

            def cpu_percent(before: float | None, after: float | None, wall: float) -> Any:
                if before is None or after is None or wall <= 0:
                    return None
                return 100.0 * (after - before) / wall

            def run(rate_hz: float, duration_s: float) -> dict[str, Any]:
                cpu_before = process_cpu_s(node_pid)
                side_before = {name: process_cpu_s(pid) for name, pid in side_pids.items()}
                wall_before = time.perf_counter()
                start_ns = time.time_ns()
                processes.send(
                    {"cmd": "run", "rate_hz": rate_hz, "duration_s": duration_s,
                     "warmup_s": warmup_s, "wait_s": startup_timeout_s}
                )  # fmt: skip
                result = json.loads(
                    processes.publisher_line(
                        RESULT_PREFIX, duration_s + warmup_s + startup_timeout_s
                    )
                )
                if "error" in result:
                    raise RuntimeError(f"DDS bench publisher: {result['error']}")
                cpu_after = process_cpu_s(node_pid)
                side_after = {name: process_cpu_s(pid) for name, pid in side_pids.items()}
                wall = time.perf_counter() - wall_before
                time.sleep(drain_s)  # late frames and one more diagnostics message
                end_ns = time.time_ns()
                records = read_records(records_path)
                stamps = result["stamps_ns"]
                received, latencies = match_run(stamps, records, "tips")
                _, last_latencies = match_run(stamps, records, "labels")
                side_cpu = {
                    name: cpu_percent(side_before[name], side_after[name], wall)
                    for name in side_pids
                }
                row = {
                    "rate_hz": rate_hz,
                    "duration_s": duration_s,
                    "warmup_s": warmup_s,
                    "published": len(stamps),
                    "received": received,
                    "dropped": len(stamps) - received,
                    "answered_percent": 100.0 * received / len(stamps) if stamps else None,
                    "latency_ms": summarize_ms(latencies) if latencies else None,
                    "latency_last_output_ms": summarize_ms(last_latencies)
                    if last_latencies
                    else None,
                    **topic_latencies(stamps, records, list(topics)),
                    "output_rate_hz": received / duration_s,
                    "achieved_rate_hz": result["achieved_rate_hz"],
                    "publish_late_ms": result["publish_late_ms"],
                    "node_cpu_percent": cpu_percent(cpu_before, cpu_after, wall),
                    "subscriber_cpu_percent": side_cpu["subscriber"],
                    "publisher_cpu_percent": side_cpu["publisher"],
                    "node_counters": counter_deltas(records, start_ns, end_ns),
                    "node_split": node_split(last_diagnostics(records, start_ns, end_ns)),
                }
                p95 = row["latency_ms"]["p95"] if row["latency_ms"] else float("nan")
                core = row["latency_core_ms"]
                say(
                    f"dds: {rate_hz:g} Hz for {duration_s:g} s ({content}, subscribed: "
                    f"{subscribe}): published {row['published']}, received {received} "
                    f"({row['answered_percent']:.1f} %), tips p95 {p95:.1f} ms, core outputs "
                    f"p95 {core['p95'] if core else float('nan'):.1f} ms"
                )
                return row

            rows = [run(float(rate), float(duration_for_rate(float(rate)))) for rate in rates_hz]
            peak = _peak_search(run, rates_hz, peak_step_s, peak_max_steps) if peak_search else None
        finally:
            stop_path.write_text("stop\n")
            processes.stop()
            if keep_logs is not None:
                Path(keep_logs).mkdir(parents=True, exist_ok=True)
                for item in workdir.iterdir():
                    if item.suffix in (".log", ".jsonl"):
                        shutil.copy2(item, Path(keep_logs) / item.name)
    return {
        "domain_id": domain_id,
        "content": content,
        "subscribe": subscribe,
        "subscribed_topics": list(topics),
        "node_params": list(node_params),
        "subscriber_qos": subscriber_qos,
        "rates": rows,
        "peak": peak,
        "skipped": None,
    }


def _peak_search(
    run: Callable[[float, float], dict[str, Any]],
    rates_hz: Sequence[float],
    step_s: float,
    max_steps: int,
) -> dict[str, Any]:
    """Highest publishing rate without dropped frames (doubling, then bisection)."""
    rate = max([float(r) for r in rates_hz] or [10.0])
    clean: float | None = None
    dropping: float | None = None
    steps = []
    for _ in range(max_steps):
        row = run(rate, step_s)
        steps.append(row)
        if row["dropped"] == 0:
            clean = rate if clean is None else max(clean, rate)
        else:
            dropping = rate if dropping is None else min(dropping, rate)
        if clean is not None and dropping is not None:
            if dropping / clean < 1.15:
                break  # bracket within 15 %: good enough for a figure
            rate = 0.5 * (clean + dropping)
        elif dropping is None:
            rate = min(2.0 * rate, _MAX_RATE_HZ)
            if clean == _MAX_RATE_HZ:
                break
        else:
            rate = 0.5 * rate
    return {
        "steps": steps,
        "max_clean_rate_hz": clean,
        "max_output_rate_hz": max(step["output_rate_hz"] for step in steps) if steps else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of the helper processes: ``python -m fluoro_perception.bench.dds ROLE ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    roles = {"publisher": _publisher_main, "subscriber": _subscriber_main}
    if not argv or argv[0] not in roles:
        print(
            f"usage: python -m {__name__} {{{','.join(roles)}}} ... (helper processes of "
            "`fluoro-perception bench`; run that instead)",
            file=sys.stderr,
        )
        return 2
    try:
        return roles[argv[0]](argv[1:])
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
