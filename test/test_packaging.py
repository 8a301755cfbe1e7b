"""The package installs as an ament_python package: ros2 run / ros2 launch can find it.

Builds the wheel exactly as ``pip install .`` does, installs it into a scratch prefix and
checks the layout that ``ros2 run`` / ``ros2 launch`` rely on, resolving the package
through ``ament_index_python`` with that prefix on ``AMENT_PREFIX_PATH``:
``lib/fluoro_perception/`` holds exactly the node executables (what
``ros2 pkg executables fluoro_perception`` lists), the ``fluoro-*`` tools are console
scripts in ``bin/`` only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "fluoro_perception"
NODE_EXECUTABLES = ("segmentation_node", "fluoro_sim_node", "bag_player_node", "bag_recorder_node")
TOOLS = ("fluoro-perception", "fluoro-sim", "fluoro-train")


@pytest.fixture(scope="module")
def installed_prefix(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pkg")
    wheel_dir = work / "wheel"
    prefix = work / "prefix"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheel_dir), str(REPO)],
        check=True, cwd=work,
    )  # fmt: skip
    wheels = list(wheel_dir.glob("fluoro_perception-*.whl"))
    assert len(wheels) == 1, f"expected one wheel, found {wheels}"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q",
         "--prefix", str(prefix),
         str(wheels[0])],
        check=True, cwd=work,
    )  # fmt: skip
    return prefix


def test_package_xml_is_format3_ament_python_with_exec_depends():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == PACKAGE
    assert root.find("export/build_type").text == "ament_python"
    exec_depends = {e.text for e in root.findall("exec_depend")}
    for dep in ("rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "visualization_msgs",
                "diagnostic_msgs", "std_msgs", "cv_bridge"):  # fmt: skip
        assert dep in exec_depends, f"package.xml lacks <exec_depend>{dep}</exec_depend>"


def test_ament_index_resolves_share_and_prefix(installed_prefix):
    from ament_index_python.packages import get_package_prefix, get_package_share_directory

    env_before = os.environ.get("AMENT_PREFIX_PATH")
    os.environ["AMENT_PREFIX_PATH"] = str(installed_prefix)
    try:
        share = Path(get_package_share_directory(PACKAGE))
        prefix = Path(get_package_prefix(PACKAGE))
    finally:
        if env_before is None:
            del os.environ["AMENT_PREFIX_PATH"]
        else:
            os.environ["AMENT_PREFIX_PATH"] = env_before
    assert prefix == installed_prefix
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "segment.launch.py").is_file()
    assert (share / "config" / "segment.yaml").is_file()
    assert (share / "config" / "fastdds.xml").is_file()  # the nodes' DDS profile


@pytest.mark.parametrize("name", NODE_EXECUTABLES)
def test_node_executables_where_ros2_run_looks(installed_prefix, name):
    launcher = installed_prefix / "lib" / PACKAGE / name
    assert launcher.is_file(), f"{launcher} missing: ros2 run {PACKAGE} {name} would fail"
    assert os.access(launcher, os.X_OK), f"{launcher} is not executable"
    assert (installed_prefix / "bin" / name).is_file()


def test_ros2_pkg_executables_lists_the_nodes_only(installed_prefix):
    # `ros2 pkg executables` lists the executable files in lib/<package>/
    listed = {
        path.name
        for path in (installed_prefix / "lib" / PACKAGE).iterdir()
        if path.is_file() and os.access(path, os.X_OK)
    }
    assert listed == set(NODE_EXECUTABLES)


@pytest.mark.parametrize("name", TOOLS)
def test_tools_are_console_scripts_in_bin(installed_prefix, name):
    assert (installed_prefix / "bin" / name).is_file()
    assert not (installed_prefix / "lib" / PACKAGE / name).exists()


def test_launcher_runs_the_console_script(installed_prefix):
    site = next((installed_prefix / "lib").glob("python3*/site-packages"))
    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run(
        [str(installed_prefix / "lib" / PACKAGE / "bag_player_node"), "--help"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "usage: bag_player_node" in result.stdout
