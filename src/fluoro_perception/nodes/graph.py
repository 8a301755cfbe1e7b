"""The node graph as data: which nodes, executables, parameters and remappings.

``config/graph.yaml`` is read by ``launch/segment.launch.py`` (real ROS 2 installs), by
``fluoro-perception run`` (all nodes in one process) and by the tests, so the three
cannot drift apart. This module also finds the package's share files (``config/``,
``models/``) both in an installed prefix and in the source tree.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "fluoro_perception"
#: Source modes of the graph: ``none`` = frames come from a topic (camera, bag replay),
#: ``sim`` = the simulator node is started too.
SOURCES = ("none", "sim")
GRAPH_FILE = "graph.yaml"


def _source_tree_root() -> Path | None:
    """The repository root when running from a source checkout (editable install)."""
    root = Path(__file__).resolve().parents[3]  # nodes -> fluoro_perception -> src -> root
    return root if (root / "package.xml").is_file() and (root / "config").is_dir() else None


def share_dirs() -> list[Path]:
    """Folders that may hold the package's share files, most specific first.

    Order: the source tree (when running from a checkout, so edits are seen at once),
    ``ament_index_python`` (colcon installs), then ``share/fluoro_perception`` under the
    prefixes on ``AMENT_PREFIX_PATH`` and under ``sys.prefix`` (pip installs).
    """
    candidates: list[Path] = []
    root = _source_tree_root()
    if root is not None:
        candidates.append(root)
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, ValueError, OSError):
        pass  # no ament index here (or AMENT_PREFIX_PATH unset): fall back on the prefixes below
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    candidates.extend(Path(prefix) / "share" / PACKAGE for prefix in prefixes)
    unique: list[Path] = []
    for candidate in candidates:
        if candidate.is_dir() and candidate not in unique:
            unique.append(candidate)
    return unique


def find_share_file(relative: str) -> Path:
    """The first existing ``<share dir>/<relative>``.

    Raises
    ------
    FileNotFoundError
        Naming every place that was searched.
    """
    searched = [directory / relative for directory in share_dirs()]
    for path in searched:
        if path.is_file():
            return path
    places = ", ".join(str(p) for p in searched) or "(no share directory found)"
    raise FileNotFoundError(
        f"{relative} not found in the {PACKAGE} share directories ({places}); "
        "install the package or run from the source tree"
    )


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph.

    Attributes
    ----------
    name : str
        Node name (also the key of its section in parameter files).
    package, executable : str
        What ``ros2 launch`` starts (``lib/<package>/<executable>``).
    node_class : str
        ``"module:Class"`` that ``fluoro-perception run`` instantiates in-process.
    sources : tuple[str, ...]
        Source modes (:data:`SOURCES`) in which this node is part of the graph.
    parameter_files : tuple[str, ...]
        Parameter YAML files relative to the share directory (``config/...``).
    parameters : dict
        Inline parameters (applied after the files).
    remappings : tuple[tuple[str, str], ...]
        Topic remappings ``(from, to)``.
    """

    name: str
    package: str
    executable: str
    node_class: str
    sources: tuple[str, ...] = SOURCES
    parameter_files: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()

    def load_class(self) -> type:
        """Import the node class named by ``node_class``."""
        module_name, _, class_name = self.node_class.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, class_name)

    def parameter_file_paths(self) -> list[Path]:
        """Absolute paths of ``parameter_files`` (see :func:`find_share_file`)."""
        return [find_share_file(relative) for relative in self.parameter_files]


@dataclass(frozen=True)
class GraphSpec:
    """The whole graph: a namespace, the image topic name the nodes use, the nodes."""

    namespace: str
    image_topic: str
    nodes: tuple[NodeSpec, ...]

    def nodes_for(self, source: str) -> list[NodeSpec]:
        """The nodes started for one source mode."""
        if source not in SOURCES:
            raise ValueError(f"source={source!r}; expected one of {list(SOURCES)}")
        return [node for node in self.nodes if source in node.sources]

    def node(self, name: str) -> NodeSpec:
        """The node called ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"node {name!r} not in the graph; nodes: {[n.name for n in self.nodes]}")


def _node_from_mapping(raw: Mapping[str, Any], where: str) -> NodeSpec:
    known = {
        "name",
        "package",
        "executable",
        "node_class",
        "sources",
        "parameter_files",
        "parameters",
        "remappings",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; expected some of {sorted(known)}")
    missing = [key for key in ("name", "executable", "node_class") if key not in raw]
    if missing:
        raise ValueError(f"{where}: missing keys {missing}")
    sources = tuple(raw.get("sources", SOURCES))
    bad_sources = [s for s in sources if s not in SOURCES]
    if bad_sources:
        raise ValueError(f"{where}: sources {bad_sources} unknown; expected some of {SOURCES}")
    remappings = raw.get("remappings") or {}
    if not isinstance(remappings, Mapping):
        raise ValueError(f"{where}: remappings must be a mapping 'from: to'")
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise ValueError(f"{where}: parameters must be a mapping 'name: value'")
    return NodeSpec(
        name=str(raw["name"]),
        package=str(raw.get("package", PACKAGE)),
        executable=str(raw["executable"]),
        node_class=str(raw["node_class"]),
        sources=sources,
        parameter_files=tuple(str(p) for p in raw.get("parameter_files") or ()),
        parameters=dict(parameters),
        remappings=tuple((str(k), str(v)) for k, v in remappings.items()),
    )


def load_graph(path: str | Path | None = None) -> GraphSpec:
    """Read ``config/graph.yaml`` (or ``path``).

    Raises
    ------
    FileNotFoundError
        No graph file.
    ValueError
        A malformed graph (one line naming the entry and what is expected).
    """
    graph_path = Path(path) if path is not None else find_share_file(f"config/{GRAPH_FILE}")
    if not graph_path.is_file():
        raise FileNotFoundError(f"graph file {graph_path} not found")
    try:
        raw = yaml.safe_load(graph_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{graph_path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("nodes"), list):
        raise ValueError(f"{graph_path}: expected a mapping with a 'nodes' list")
    node_list: list[NodeSpec] = []
    for index, entry in enumerate(raw["nodes"]):
        where = f"{graph_path}: nodes[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be a mapping with name, executable, node_class")
        node_list.append(_node_from_mapping(entry, where))
    nodes = tuple(node_list)
    names = [node.name for node in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"{graph_path}: node names must be unique, got {names}")
    return GraphSpec(
        namespace=str(raw.get("namespace", "")),
        image_topic=str(raw.get("image_topic", "image_raw")),
        nodes=nodes,
    )


def parse_bool(name: str, text: str) -> bool:
    """A launch-argument boolean (``true``/``false``, case-insensitive)."""
    lowered = str(text).strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"launch argument {name}:={text!r}; expected true or false")


@dataclass(frozen=True)
class NodeLaunchPlan:
    """Everything a ``launch_ros.actions.Node`` needs for one node of the graph."""

    package: str
    executable: str
    name: str
    namespace: str
    parameters: tuple[Any, ...]  # parameter file paths (str) and dicts, applied in order
    remappings: tuple[tuple[str, str], ...]


def launch_plan(
    graph: GraphSpec,
    *,
    source: str = "none",
    namespace: str | None = None,
    config_file: str = "",
    model: str = "",
    providers: str = "",
    input_topic: str = "",
    use_sim_time: bool = False,
    overlay: bool = True,
    tracker: bool = True,
) -> list[NodeLaunchPlan]:
    """The nodes ``segment.launch.py`` starts for its (already resolved) arguments.

    Parameters
    ----------
    graph : GraphSpec
        From :func:`load_graph`.
    source : str
        ``"none"`` or ``"sim"`` (:data:`SOURCES`).
    namespace : str or None
        Node namespace; None = the graph's.
    config_file : str
        Parameter YAML that replaces the segmentation node's ``parameter_files``; "" keeps them.
    model, providers : str
        ``model.path`` and comma-separated ``model.providers`` overrides; "" = no override.
    input_topic : str
        Remap target of the graph's image topic; "" = no remap.
    use_sim_time, overlay, tracker : bool
        ``use_sim_time`` (all nodes), ``overlay_enabled`` and ``tracking_enabled``.
    """
    plans = []
    for node in graph.nodes_for(source):
        files: list[Any] = [str(p) for p in node.parameter_file_paths()]
        overrides: dict[str, Any] = {"use_sim_time": bool(use_sim_time)}
        if node.executable == "segmentation_node":
            if config_file:
                files = [config_file]
            if model:
                overrides["model.path"] = model
            if providers:
                overrides["model.providers"] = [
                    p.strip() for p in providers.split(",") if p.strip()
                ]
            overrides["overlay_enabled"] = bool(overlay)
            overrides["tracking_enabled"] = bool(tracker)
        remappings = list(node.remappings)
        if input_topic:
            remappings.append((graph.image_topic, input_topic))
        plans.append(
            NodeLaunchPlan(
                package=node.package,
                executable=node.executable,
                name=node.name,
                namespace=graph.namespace if namespace is None else namespace,
                parameters=(*files, {**node.parameters, **overrides}),
                remappings=tuple(remappings),
            )
        )
    return plans
