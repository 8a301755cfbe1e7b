"""``fluoro-perception run``: the node graph in ONE process, for machines without ``ros2 launch``.

Starts the nodes of ``config/graph.yaml`` (the same data ``launch/segment.launch.py``
uses) on a ``MultiThreadedExecutor`` with real DDS, so other processes see the usual
topics. ``--source sim`` adds the simulator node; ``--source topic`` waits for frames
on the image topic (camera driver, bag replay). Ends cleanly on Ctrl-C or SIGTERM
(repeated ones included), after ``--frames N`` processed frames, or after ``--timeout``
seconds, and prints what the segmentation node did.

Examples::

    fluoro-perception run --source sim --model models/default.onnx --frames 100
    fluoro-perception run --source topic --param max_age_s:=0.2 \
        --param fluoro_sim_node:fps:=15.0
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from fluoro_perception.nodes.dds_profile import apply_dds_profile
from fluoro_perception.nodes.graph import GraphSpec, NodeSpec, load_graph
from fluoro_perception.nodes.params import (
    CONFIG_CLASSES,
    config_from_flat,
    load_config_yaml,
    parameter_specs,
    yaml_parameters,
)
from fluoro_perception.nodes.shutdown import ShutdownSignals

SEGMENTATION_EXECUTABLE = "segmentation_node"
SIM_EXECUTABLE = "fluoro_sim_node"
_PARAM_PATTERN = re.compile(
    r"^(?:(?P<node>[A-Za-z_][A-Za-z0-9_]*):)?(?P<key>[A-Za-z_][\w.]*):=(?P<value>.*)$"
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``run`` on the ``fluoro-perception`` dispatcher."""
    parser = subparsers.add_parser(
        "run",
        help="start the perception nodes in one process (no ros2 launch needed)",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source",
        choices=("sim", "topic"),
        default="sim",
        help="sim: also start the simulator node; topic: frames come from the image topic",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="segmentation_node parameter YAML (ros__parameters form); default: the "
        "graph's config/segment.yaml",
    )
    parser.add_argument("--model", default=None, help="ONNX model file (sets model.path)")
    parser.add_argument(
        "--frames",
        type=int,
        default=0,
        help="stop after N frames processed by segmentation_node; 0 = until Ctrl-C",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="[NODE:]KEY:=VALUE",
        help="parameter override (YAML value), for NODE or every node that has KEY; "
        "repeatable, e.g. --param max_age_s:=0.2 --param fluoro_sim_node:fps:=20.0",
    )
    parser.add_argument(
        "--input-topic", default=None, help="remap the image topic (default: graph image_topic)"
    )
    parser.add_argument(
        "--namespace", default=None, help="node namespace (default: the graph's namespace)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        help="give up after this many seconds [s]; 0 = no limit",
    )
    parser.add_argument(
        "--graph", type=Path, default=None, help="graph YAML (default: config/graph.yaml)"
    )
    parser.set_defaults(func=run)
    return parser


def parse_param_overrides(items: list[str], nodes: list[NodeSpec]) -> dict[str, dict[str, Any]]:
    """``[NODE:]KEY:=VALUE`` strings -> ``{node name: {key: value}}``.

    A key without a node goes to every node of the graph that declares it.

    Raises
    ------
    ValueError
        Malformed item, unknown node, or a key no node declares (one line).
    """
    declared = {
        node.name: {spec.name for spec in parameter_specs(CONFIG_CLASSES[node.executable])}
        | {"use_sim_time"}
        for node in nodes
    }
    overrides: dict[str, dict[str, Any]] = {node.name: {} for node in nodes}
    for item in items:
        match = _PARAM_PATTERN.match(item)
        if match is None:
            raise ValueError(f"--param {item!r}; expected [NODE:]KEY:=VALUE, e.g. max_age_s:=0.2")
        try:
            value = yaml.safe_load(match["value"]) if match["value"] else ""
        except yaml.YAMLError:
            raise ValueError(f"--param {item!r}: the value is not valid YAML") from None
        key = match["key"]
        if match["node"] is not None:
            if match["node"] not in declared:
                raise ValueError(
                    f"--param {item!r}: node {match['node']!r} is not started; "
                    f"nodes: {sorted(declared)}"
                )
            targets = [match["node"]]
        else:
            targets = [name for name, keys in declared.items() if key in keys]
        targets = [name for name in targets if key in declared[name]]
        if not targets:
            raise ValueError(
                f"--param {item!r}: no started node has a parameter {key!r} "
                "(see docs/ros_interface.md)"
            )
        for name in targets:
            overrides[name][key] = value
    return overrides


def _yaml_value(value: Any) -> str:
    """A value in the YAML syntax of ``-p key:=value`` (JSON is valid YAML)."""
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)  # keeps the decimal point: 10.0 stays a double
    return json.dumps(value)


def node_cli_args(
    graph: GraphSpec,
    node: NodeSpec,
    parameter_files: list[Path],
    overrides: dict[str, Any],
    input_topic: str | None,
) -> list[str]:
    """The ``--ros-args`` of one node: files, then graph parameters, then overrides."""
    args = ["--ros-args"]
    for path in parameter_files:
        args += ["--params-file", str(path)]
    for key, value in {**node.parameters, **overrides}.items():
        args += ["-p", f"{key}:={_yaml_value(value)}"]
    for source, target in node.remappings:
        args += ["-r", f"{source}:={target}"]
    if input_topic:
        args += ["-r", f"{graph.image_topic}:={input_topic}"]
    return args


def _check_parameters(
    node: NodeSpec, parameter_files: list[Path], overrides: dict[str, Any], namespace: str
) -> None:
    """Validate the merged parameters before anything starts (one-line ValueError)."""
    config_cls = CONFIG_CLASSES[node.executable]
    values: dict[str, Any] = {}
    for path in parameter_files:
        load_config_yaml(path, config_cls, node.name, namespace)  # file on its own
        values.update(
            yaml_parameters(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, node.name,
                            namespace)
        )  # fmt: skip
    values.update(node.parameters)
    values.update(overrides)
    values.pop("use_sim_time", None)
    try:
        config_from_flat(config_cls, values)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{node.name}: {exc}") from None


def _summary(segmentation: Any) -> str:
    level, message, values = segmentation.diagnostics_values()
    drops = {
        key.split(".", 1)[1]: count
        for key, count in values.items()
        if key.startswith("dropped.") and count
    }

    stages = ", ".join(
        f"{key.split('.', 1)[1]} {value:.1f} ms"
        for key, value in values.items()
        if key.startswith("stage_p50_ms.")
    )

    def ms(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.1f} ms"

    return (
        f"segmentation_node: {values['frames_processed']} frames processed "
        f"({values['frames_received']} received, {values['frames_dropped']} dropped"
        f"{' ' + json.dumps(drops) if drops else ''}); provider {values['provider'] or 'none'}; "
        f"latency p50 {ms(values['latency_p50_ms'])}, p95 {ms(values['latency_p95_ms'])}, "
        f"max {ms(values['latency_max_ms'])}; tips published {values['tips_published']}"
        + (f"\nstage medians: {stages}" if stages else "")
    )


def stop_graph(executor: Any, nodes: list[Any], context: Any) -> None:
    """Tear down an in-process graph started on ``executor`` (None if it never started).

    Nodes leave the executor first; callbacks already handed to the thread pool then get
    0.2 s to finish before the executor's guard condition is destroyed (else rclpy reports
    an InvalidHandle task); nodes are destroyed in reverse start order (a recorder closes
    its bag there) and the context is shut down.
    """
    import rclpy

    if executor is not None:
        for node in nodes:
            executor.remove_node(node)
        time.sleep(0.2)
        executor.shutdown(timeout_sec=2.0)
    for node in reversed(nodes):
        node.destroy_node()
    rclpy.try_shutdown(context=context)


def run(args: argparse.Namespace) -> int:
    """Start the graph, spin until done, shut down cleanly; 0 on success."""
    if args.frames < 0:
        raise ValueError(f"--frames {args.frames}; expected >= 0 (0 = until Ctrl-C)")
    if args.timeout < 0:
        raise ValueError(f"--timeout {args.timeout}; expected >= 0 (0 = no limit)")
    if args.config is not None and not args.config.is_file():
        raise FileNotFoundError(f"--config {args.config} not found; pass a parameter YAML file")
    graph = load_graph(args.graph)
    source = "sim" if args.source == "sim" else "none"
    nodes = graph.nodes_for(source)
    namespace = args.namespace if args.namespace is not None else graph.namespace
    overrides = parse_param_overrides(list(args.param), nodes)
    segmentation_specs = [n for n in nodes if n.executable == SEGMENTATION_EXECUTABLE]
    if len(segmentation_specs) != 1:
        raise ValueError(f"the graph must start exactly one {SEGMENTATION_EXECUTABLE}")
    if args.model:
        model_path = Path(args.model).expanduser().resolve()
        overrides[segmentation_specs[0].name]["model.path"] = str(model_path)

    plans = []
    for node in nodes:
        if node.executable == SEGMENTATION_EXECUTABLE and args.config is not None:
            files = [args.config]
        else:
            files = node.parameter_file_paths()
        _check_parameters(node, files, overrides[node.name], namespace)
        plans.append((node, node_cli_args(graph, node, files, overrides[node.name],
                                          args.input_topic)))  # fmt: skip

    with ShutdownSignals() as signals:
        return _run_graph(args, plans, namespace, signals)


def _run_graph(
    args: argparse.Namespace,
    plans: list[tuple[NodeSpec, list[str]]],
    namespace: str,
    signals: ShutdownSignals,
) -> int:
    """Start the planned nodes in one process, spin until done, tear down; 0 on success.

    A private context gets no rclpy signal handler, so SIGINT / SIGTERM are only recorded
    by ``signals`` and the spin loop polls them: the first ends the loop, later ones
    (Ctrl-C pressed again) cannot interrupt the teardown.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    apply_dds_profile()  # before the first participant (dds_profile)
    context = rclpy.Context()
    rclpy.init(args=["fluoro-perception"], context=context)
    started: list[Any] = []
    executor = None
    try:
        for node, cli_args in plans:
            node_class = node.load_class()
            started.append(node_class(node.name, namespace=namespace, context=context,
                                      cli_args=cli_args))  # fmt: skip
        segmentation = next(
            n for n, (spec, _) in zip(started, plans, strict=True)
            if spec.executable == SEGMENTATION_EXECUTABLE
        )  # fmt: skip
        if segmentation.configure_error:
            raise RuntimeError(
                f"segmentation_node did not configure: {segmentation.configure_error}"
            )
        executor = MultiThreadedExecutor(num_threads=4, context=context)
        for node in started:
            executor.add_node(node)
        print(
            f"fluoro-perception run: {', '.join(n.get_fully_qualified_name() for n in started)} "
            f"(source {args.source}); Ctrl-C to stop",
            flush=True,
        )
        deadline = time.monotonic() + args.timeout if args.timeout else math.inf
        reached = False
        try:
            while context.ok() and not signals.requested:
                executor.spin_once(timeout_sec=0.1)
                if args.frames and segmentation.stats.frames_processed >= args.frames:
                    reached = True
                    break
                if time.monotonic() > deadline:
                    break
        except ExternalShutdownException:
            pass
        if signals.requested or not context.ok():
            reached = reached or not args.frames  # stopped by the user: fine without --frames
        print(_summary(segmentation), flush=True)
        if args.frames and not reached:
            print(
                f"fluoro-perception run: stopped before {args.frames} frames were processed",
                file=sys.stderr,
            )
            return 1
        return 0
    finally:
        stop_graph(executor, started, context)
