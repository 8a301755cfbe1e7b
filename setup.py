"""ament_python package definition for fluoro_perception.

Works two ways:

* ``colcon build`` in a ROS 2 workspace: setup.cfg sends the console scripts to
  ``lib/fluoro_perception/`` where ``ros2 run`` / ``ros2 launch`` look for them (all of
  them, the ``fluoro-*`` tools too: ament_python installs every console script there).
* ``pip install`` (a wheel) into a virtual environment: wheels always put console
  scripts in ``bin/``, so when a wheel is built we also ship one tiny launcher per NODE
  executable in ``lib/fluoro_perception/`` that execs ``<prefix>/bin/<name>``. With the
  environment's prefix on ``AMENT_PREFIX_PATH`` the ament index marker in
  ``share/ament_index`` makes ``ros2 run`` / ``ros2 launch`` find them, and
  ``ros2 pkg executables fluoro_perception`` lists the nodes only: the ``fluoro-*``
  tools stay console scripts in ``bin/``.
"""

import os
import stat
import sys
from glob import glob

import setuptools
from setuptools import find_packages, setup

PACKAGE = "fluoro_perception"
VERSION = "0.1.0"

# name -> "module:function". ROS node executables use snake_case (ROS convention) and
# also get a launcher in lib/<package>/ (wheels); user tools use kebab-case (CLI
# convention) and stay in bin/ only. The bag nodes' entry points wrap their main in the
# shutdown-signal handling of nodes/shutdown.py (clean exit on repeated SIGINT/SIGTERM).
NODE_EXECUTABLES = {
    "segmentation_node": "fluoro_perception.nodes.segmentation_node:main",
    "fluoro_sim_node": "fluoro_perception.nodes.sim_node:main",
    "bag_player_node": "fluoro_perception.nodes.shutdown:bag_player_main",
    "bag_recorder_node": "fluoro_perception.nodes.shutdown:bag_recorder_main",
}
TOOLS = {
    "fluoro-perception": "fluoro_perception.cli.main:main",
    "fluoro-sim": "fluoro_perception.sim.cli:main",
    "fluoro-train": "fluoro_training.cli:main",
}
CONSOLE_SCRIPTS = {**TOOLS, **NODE_EXECUTABLES}

RUNTIME_REQUIRES = [
    "numpy>=2.0",
    "opencv-python-headless>=4.10",
    "onnxruntime>=1.20",
    "scikit-image>=0.24",
    "scipy>=1.13",
    "filterpy>=1.4.5",
    "rosbags>=0.11",
    "PyYAML>=6.0",
    "tqdm>=4.66",
    "matplotlib>=3.9",
]

EXTRAS = {
    # ROS 2 client library from PyPI wheels, for machines WITHOUT a ROS distribution.
    # Never install these into a sourced ROS 2 environment.
    "ros": [
        "ros-rclpy",
        "ros-rmw-fastrtps-cpp",
        "ros-std-msgs",
        "ros-sensor-msgs",
        "ros-geometry-msgs",
        "ros-nav-msgs",
        "ros-visualization-msgs",
        "ros-diagnostic-msgs",
    ],
    "train": [
        "torch==2.13.0",
        "monai==1.6.1",
        "onnx>=1.17",
        "onnxscript>=0.3",
        "tensorboard>=2.17",
    ],
    # onnxruntime-gpu replaces onnxruntime: uninstall onnxruntime first (see README).
    "gpu": ["onnxruntime-gpu>=1.20"],
    "dev": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", "pytest-timeout>=2.3"],
}


def _ament_launchers():
    """Write the lib/<package>/ launchers of the nodes for wheel builds (module docstring)."""
    out_dir = os.path.join("build", "ament_launchers")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name in NODE_EXECUTABLES:
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(
                "#!/bin/sh\n"
                "# ament launcher: ros2 run looks in <prefix>/lib/" + PACKAGE + "/;\n"
                "# pip puts console scripts in <prefix>/bin/.\n"
                'exec "$(dirname "$0")/../../bin/' + name + '" "$@"\n'
            )
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        paths.append(path)
    return paths


data_files = [
    ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
    ("share/" + PACKAGE, ["package.xml"]),
    ("share/" + PACKAGE + "/launch", sorted(glob("launch/*.launch.py"))),
    ("share/" + PACKAGE + "/config", sorted(glob("config/*.yaml") + glob("config/*.xml"))),
    ("share/" + PACKAGE + "/config/train", sorted(glob("config/train/*.yaml"))),
    ("share/" + PACKAGE + "/models", sorted(glob("models/*.onnx") + glob("models/*.md"))),
]
if any(cmd in sys.argv for cmd in ("bdist_wheel", "editable_wheel")):
    data_files.append(("lib/" + PACKAGE, _ament_launchers()))

# `colcon build --symlink-install` runs `setup.py develop`, which on the setuptools of
# ROS 2 distributions (< 80) takes script_dir; setuptools >= 80 removed the option and
# rejects it when it appears in setup.cfg, so it is passed only where it exists.
options = {}
if int(setuptools.__version__.split(".")[0]) < 80:
    options["develop"] = {"script_dir": "$base/lib/" + PACKAGE}

setup(
    name=PACKAGE,
    version=VERSION,
    description="ROS 2 perception for X-ray fluoroscopy: guidewire and stent segmentation, "
    "centerline, tip localization and tracking",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    maintainer="fluoro_perception developers",
    maintainer_email="fluoro-perception@users.noreply.github.com",
    python_requires=">=3.10",
    package_dir={"": "src"},
    packages=find_packages("src", exclude=["test", "test.*"]),
    include_package_data=False,
    data_files=data_files,
    install_requires=RUNTIME_REQUIRES,
    extras_require=EXTRAS,
    tests_require=["pytest"],
    zip_safe=False,
    options=options,
    entry_points={
        "console_scripts": [f"{name} = {target}" for name, target in CONSOLE_SCRIPTS.items()]
    },
)
