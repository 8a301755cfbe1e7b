"""config/graph.yaml as data, and launch/segment.launch.py loaded with stub launch modules.

``launch`` / ``launch_ros`` cannot be installed here, so small stand-ins record the
actions the launch file builds (arguments, executables, parameters, remappings).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import sys
import types
from pathlib import Path

import pytest

from fluoro_perception.nodes import graph as graph_module
from fluoro_perception.nodes.graph import launch_plan, load_graph, parse_bool
from fluoro_perception.nodes.params import CONFIG_CLASSES, config_from_flat

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "segment.launch.py"
EXPECTED_ARGUMENTS = {
    "namespace",
    "config",
    "model",
    "providers",
    "input_topic",
    "use_sim_time",
    "overlay",
    "tracker",
    "source",
}


class _Recorded:
    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context) -> str:
        return context.launch_configurations[self.name]


@pytest.fixture
def launch_module(monkeypatch: pytest.MonkeyPatch):
    """The launch file imported against recording stand-ins of launch / launch_ros."""
    launch = types.ModuleType("launch")
    launch.LaunchDescription = type("LaunchDescription", (_Recorded,), {})
    actions = types.ModuleType("launch.actions")
    actions.DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorded,), {})
    actions.OpaqueFunction = type("OpaqueFunction", (_Recorded,), {})
    substitutions = types.ModuleType("launch.substitutions")
    substitutions.LaunchConfiguration = _LaunchConfiguration
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = type("Node", (_Recorded,), {})
    stubs = {
        "launch": launch,
        "launch.actions": actions,
        "launch.substitutions": substitutions,
        "launch_ros": launch_ros,
        "launch_ros.actions": ros_actions,
    }
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("segment_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resolve(launch_module, **values: str) -> list[_Recorded]:
    """Run the launch description with argument values (defaults for the others)."""
    description = launch_module.generate_launch_description()
    entities = description.args[0]
    declared = [e for e in entities if type(e).__name__ == "DeclareLaunchArgument"]
    configurations = {e.args[0]: e.kwargs["default_value"] for e in declared}
    unknown = set(values) - set(configurations)
    assert not unknown, f"not declared: {unknown}"
    configurations.update(values)
    opaque = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    assert len(opaque) == 1
    context = types.SimpleNamespace(launch_configurations=configurations)
    return opaque[0].kwargs["function"](context)


def test_arguments_are_declared_with_descriptions(launch_module) -> None:
    entities = launch_module.generate_launch_description().args[0]
    declared = {
        e.args[0]: e.kwargs for e in entities if type(e).__name__ == "DeclareLaunchArgument"
    }
    assert set(declared) == EXPECTED_ARGUMENTS
    for name, kwargs in declared.items():
        assert len(kwargs["description"]) > 10, name
    assert declared["source"]["choices"] == ["none", "sim"]
    assert declared["use_sim_time"]["default_value"] == "false"


def test_default_launch_starts_the_segmentation_node(launch_module) -> None:
    nodes = _resolve(launch_module)
    assert len(nodes) == 1
    node = nodes[0].kwargs
    assert (node["package"], node["executable"], node["name"], node["namespace"]) == (
        "fluoro_perception",
        "segmentation_node",
        "segmentation_node",
        "fluoro",
    )
    parameter_file, inline = node["parameters"]
    assert Path(parameter_file) == REPO / "config" / "segment.yaml"
    assert inline == {"use_sim_time": False, "overlay_enabled": True, "tracking_enabled": True}
    assert node["remappings"] == []


def test_sim_source_and_overrides(launch_module) -> None:
    nodes = _resolve(
        launch_module,
        source="sim",
        model="/models/fra.onnx",
        providers="CUDAExecutionProvider, CPUExecutionProvider",
        input_topic="/camera/image",
        use_sim_time="true",
        overlay="false",
        tracker="False",
        namespace="robot1",
        config="/etc/fluoro/segment.yaml",
    )
    by_executable = {n.kwargs["executable"]: n.kwargs for n in nodes}
    assert set(by_executable) == {"segmentation_node", "fluoro_sim_node"}
    segmentation = by_executable["segmentation_node"]
    assert segmentation["namespace"] == "robot1"
    assert segmentation["parameters"][0] == "/etc/fluoro/segment.yaml"
    assert segmentation["parameters"][-1] == {
        "use_sim_time": True,
        "model.path": "/models/fra.onnx",
        "model.providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "overlay_enabled": False,
        "tracking_enabled": False,
    }
    sim = by_executable["fluoro_sim_node"]
    assert sim["parameters"][-1]["fps"] == 10.0 and sim["parameters"][-1]["use_sim_time"]
    for node in nodes:  # both ends of the image topic move together
        assert node.kwargs["remappings"] == [("image_raw", "/camera/image")]


def test_bad_boolean_argument_is_a_clear_error(launch_module) -> None:
    with pytest.raises(ValueError, match=r"overlay:='maybe'; expected true or false"):
        _resolve(launch_module, overlay="maybe")
    assert parse_bool("x", "TRUE") is True and parse_bool("x", "0") is False


def test_graph_nodes_are_installed_executables_with_valid_parameters() -> None:
    graph = load_graph()
    scripts = {
        entry.name: entry.value
        for entry in importlib.metadata.entry_points(group="console_scripts")
        if entry.name in {node.executable for node in graph.nodes}
    }
    for node in graph.nodes:
        # the executable ros2 launch starts runs the module of the class `run` starts
        module_name = node.node_class.partition(":")[0]
        assert scripts[node.executable] == f"{module_name}:main", node.name
        node_class = node.load_class()
        assert inspect.isclass(node_class)
        assert "namespace" in inspect.signature(node_class.__init__).parameters
        config_cls = CONFIG_CLASSES[node.executable]
        config_from_flat(config_cls, node.parameters)  # raises on a bad value
        for path in node.parameter_file_paths():
            assert path.is_file()
    assert {n.name for n in graph.nodes_for("none")} == {"segmentation_node"}
    assert {n.name for n in graph.nodes_for("sim")} == {"segmentation_node", "fluoro_sim_node"}


def test_launch_plan_parameters_validate_against_the_configs() -> None:
    for plan in launch_plan(load_graph(), source="sim", model="/m.onnx", tracker=False):
        inline = dict(plan.parameters[-1])
        inline.pop("use_sim_time")
        config_from_flat(CONFIG_CLASSES[plan.executable], inline)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nodes: 3\n", "expected a mapping with a 'nodes' list"),
        ("nodes: [3]\n", r"nodes\[0\] must be a mapping"),
        (
            "nodes:\n  - {name: a, executable: a, node_class: 'm:C', colour: red}\n",
            r"unknown keys \['colour'\]",
        ),
        ("nodes:\n  - {name: a, node_class: 'm:C'}\n", r"missing keys \['executable'\]"),
        (
            "nodes:\n  - {name: a, executable: a, node_class: 'm:C', sources: [camera]}\n",
            r"sources \['camera'\] unknown",
        ),
        (
            "nodes:\n  - {name: a, executable: a, node_class: 'm:C'}\n"
            "  - {name: a, executable: b, node_class: 'm:D'}\n",
            "node names must be unique",
        ),
        ("nodes: [\n", "is not valid YAML"),
    ],
)
def test_malformed_graph_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "graph.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_graph(path)


def test_unknown_source_and_missing_share_file() -> None:
    with pytest.raises(ValueError, match=r"source='camera'; expected one of"):
        load_graph().nodes_for("camera")
    with pytest.raises(FileNotFoundError, match="no_such_file.yaml not found"):
        graph_module.find_share_file("config/no_such_file.yaml")
