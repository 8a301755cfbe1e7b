"""``fluoro-perception run``: the graph in one process ends by itself and reports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from model_fixtures import make_random_onnx_model

from fluoro_perception.cli import run as run_cli
from fluoro_perception.cli.main import main
from fluoro_perception.nodes.graph import load_graph

pytestmark = pytest.mark.ros

SMALL_SIM = [
    "--param",
    "fluoro_sim_node:height:=64",
    "--param",
    "fluoro_sim_node:width:=64",
    "--param",
    "fluoro_sim_node:fps:=20.0",
    "--param",
    "model.providers:=[CPUExecutionProvider]",
]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_onnx_model(tmp_path_factory.mktemp("run") / "random.onnx")


def _processed(output: str) -> int:
    match = re.search(r"segmentation_node: (\d+) frames processed", output)
    assert match, output
    return int(match.group(1))


def test_sim_run_ends_after_n_frames(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["run", "--source", "sim", "--frames", "4", "--model", str(model_path), "--timeout", "60"]
        + SMALL_SIM
    )
    output = capsys.readouterr().out
    assert code == 0, output
    assert _processed(output) >= 4
    assert "provider CPUExecutionProvider" in output


def test_run_in_a_subprocess(model_path: Path) -> None:
    # a separate process, as a user starts it (own DDS participant, same domain); the
    # console-script mapping itself is checked in test_launch.py
    command = [
        sys.executable,
        "-m",
        "fluoro_perception.cli.main",
        "run",
        "--source",
        "sim",
        "--frames",
        "2",
        "--model",
        str(model_path),
        "--timeout",
        "60",
        *SMALL_SIM,
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert _processed(completed.stdout) >= 2


def test_topic_source_without_frames_times_out(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "--source", "topic", "--frames", "1", "--model", str(model_path)]
        + ["--timeout", "1", "--input-topic", "/nobody/publishes/here"]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "stopped before 1 frames were processed" in captured.err
    assert _processed(captured.out) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frames", "-1"], "--frames -1; expected >= 0"),
        (["--param", "max_age_s=0.2"], r"expected \[NODE:\]KEY:=VALUE"),
        (["--param", "max_age:=0.2"], "no started node has a parameter 'max_age'"),
        (["--param", "max_age_s:=-1.0"], "max_age_s=-1.0 is below the minimum"),
        (["--param", "nobody:fps:=1.0"], "node 'nobody' is not started"),
        (["--config", "/no/such.yaml"], "--config /no/such.yaml not found"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--source", "sim", *argv]) == 2
    error = capsys.readouterr().err.strip()
    assert re.search(message, error), error
    assert len(error.splitlines()) == 1


def test_missing_model_is_reported_not_crashed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.onnx"
    assert main(["run", "--source", "topic", "--model", str(missing)]) == 2
    error = capsys.readouterr().err
    assert "segmentation_node did not configure" in error and str(missing) in error


def test_param_overrides_go_to_the_nodes_that_declare_them() -> None:
    nodes = load_graph().nodes_for("sim")
    overrides = run_cli.parse_param_overrides(
        ["use_sim_time:=true", "fps:=5.0", "segmentation_node:max_age_s:=0.2", "frame_id:=x"],
        nodes,
    )
    assert overrides["segmentation_node"] == {"use_sim_time": True, "max_age_s": 0.2}
    assert overrides["fluoro_sim_node"] == {"use_sim_time": True, "fps": 5.0, "frame_id": "x"}


def test_node_cli_args_order_files_graph_parameters_overrides() -> None:
    graph = load_graph()
    sim = graph.node("fluoro_sim_node")
    args = run_cli.node_cli_args(graph, sim, [Path("/a.yaml")], {"fps": 5.0}, "/cam")
    assert args[:3] == ["--ros-args", "--params-file", "/a.yaml"]
    # the override replaces the graph's fps: 10.0; other graph parameters stay
    assert "fps:=5.0" in args and "fps:=10.0" not in args
    assert "height:=512" in args and args.index("height:=512") > args.index("/a.yaml")
    assert args[-2:] == ["-r", "image_raw:=/cam"]
    assert run_cli._yaml_value(["CPUExecutionProvider"]) == '["CPUExecutionProvider"]'
