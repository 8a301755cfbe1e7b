"""Launch the fluoro_perception graph on a ROS 2 install: ``ros2 launch fluoro_perception segment.launch.py``.

Thin on purpose: which nodes start, with which executables, parameters and remappings
is data (``config/graph.yaml`` + ``config/segment.yaml``) turned into node plans by
:func:`fluoro_perception.nodes.graph.launch_plan`; the same data drives
``fluoro-perception run`` and the tests.

Examples::

    ros2 launch fluoro_perception segment.launch.py model:=/models/fra_net.onnx
    ros2 launch fluoro_perception segment.launch.py source:=sim overlay:=false
    ros2 launch fluoro_perception segment.launch.py input_topic:=/camera/image use_sim_time:=true
"""

# isort: off
# (this repository's launch/ folder makes the sorter take the `launch` package for a
# first-party one and split these imports apart)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
# isort: on

from fluoro_perception.nodes.graph import SOURCES, launch_plan, load_graph, parse_bool

#: name -> (default, description, choices or None). "" defaults mean "keep the config's".
ARGUMENTS = {
    "namespace": ("", "namespace of every node; empty = the graph's (fluoro)", None),
    "config": ("", "segmentation_node parameter YAML; empty = config/segment.yaml", None),
    "model": ("", "ONNX model file (model.path); empty = the configured/shipped model", None),
    "providers": (
        "",
        "comma-separated ONNX Runtime providers, e.g. CUDAExecutionProvider,CPUExecutionProvider",
        None,
    ),
    "input_topic": ("", "image topic to subscribe to; empty = /<namespace>/image_raw", None),
    "use_sim_time": ("false", "use the /clock topic (bag replay with --clock)", ["true", "false"]),
    "overlay": ("true", "publish the rgb8 overlay image", ["true", "false"]),
    "tracker": ("true", "Kalman tip tracking (tip_tracked)", ["true", "false"]),
    "source": (
        "none",
        "none: frames from input_topic; sim: also start the simulator",
        list(SOURCES),
    ),
}


def _launch_setup(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    plans = launch_plan(
        load_graph(),
        source=value["source"],
        namespace=value["namespace"] or None,
        config_file=value["config"],
        model=value["model"],
        providers=value["providers"],
        input_topic=value["input_topic"],
        use_sim_time=parse_bool("use_sim_time", value["use_sim_time"]),
        overlay=parse_bool("overlay", value["overlay"]),
        tracker=parse_bool("tracker", value["tracker"]),
    )
    return [
        Node(
            package=plan.package,
            executable=plan.executable,
            name=plan.name,
            namespace=plan.namespace,
            parameters=list(plan.parameters),
            remappings=list(plan.remappings),
            output="screen",
            emulate_tty=True,
        )
        for plan in plans
    ]


def generate_launch_description():
    arguments = []
    for name, (default, description, choices) in ARGUMENTS.items():
        extra = {"choices": choices} if choices else {}
        arguments.append(
            DeclareLaunchArgument(name, default_value=default, description=description, **extra)
        )
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_setup)])
