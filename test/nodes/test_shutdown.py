"""Every node executable ends cleanly on Ctrl-C, pressed twice, and on SIGTERM.

Real processes over real DDS (the session's isolated domain, localhost only; see
test/conftest.py), started the way their console scripts start them: the
``module:function`` that setup.py's ``NODE_EXECUTABLES`` installs (``bin/<name>`` and the
``lib/fluoro_perception/<name>`` launcher that ``ros2 run`` / ``ros2 launch`` exec). A
node counts as up once it answers its ``list_parameters`` service, which only a
spinning node does. Then SIGINT twice 20 ms apart (the terminal and ``ros2 launch`` both
deliver one on Ctrl-C), or one SIGTERM: exit status 0, no traceback, and an exit well
within a generous bound (the node bounds its own teardown to a few seconds; the bound
here only catches a hang on a loaded machine).
"""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import rclpy
from rcl_interfaces.srv import ListParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from fluoro_perception.cli.soak import write_grey_level_model
from fluoro_perception.nodes import shutdown

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0
EXIT_BOUND_S = 20.0
SECOND_SIGNAL_AFTER_S = 0.02


def node_executables() -> dict[str, str]:
    """``NODE_EXECUTABLES`` of setup.py: executable name -> ``module:function``."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "NODE_EXECUTABLES"
            for target in statement.targets
        ):
            return ast.literal_eval(statement.value)
    raise AssertionError("setup.py defines no NODE_EXECUTABLES")


def console_script_command(name: str, arguments: list[str]) -> list[str]:
    """What ``bin/<name>`` runs: the entry point's function, with argv[0] = name."""
    module, _, function = node_executables()[name].partition(":")
    code = (
        f"import sys; from {module} import {function}; "
        f"sys.argv[0] = {name!r}; sys.exit({function}())"
    )
    return [sys.executable, "-c", code, *arguments]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fluoro_perception.sim.cli import main as sim_main

    folder = tmp_path_factory.mktemp("shutdown")
    bag = folder / "bag"
    assert sim_main(["bag", str(bag), "--frames", "20", "--fps", "10", "--size", "64", "64",
                     "--quiet"]) == 0  # fmt: skip
    return {"model": write_grey_level_model(folder / "grey.onnx", 64), "bag": bag, "dir": folder}


@pytest.fixture(scope="module")
def probe():
    """A test node on its own context and executor (spun only while waiting below)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node("shutdown_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    yield node, executor
    executor.shutdown(timeout_sec=2.0)
    node.destroy_node()
    rclpy.try_shutdown(context=context)


def _arguments(name: str, files: dict[str, Path], tag: str) -> tuple[list[str], str]:
    """Command-line arguments of one executable and the service that shows it spins."""
    if name == "segmentation_node":
        return [
            "--ros-args", "-p", f"model.path:={files['model']}",
            "-p", "model.providers:=['CPUExecutionProvider']", "-p", "model.warmup_runs:=0",
        ], "/fluoro/segmentation_node/list_parameters"  # fmt: skip
    if name == "fluoro_sim_node":
        return [
            "--ros-args", "-p", "height:=64", "-p", "width:=64", "-p", "fps:=20.0",
        ], "/fluoro/fluoro_sim_node/list_parameters"  # fmt: skip
    if name == "bag_player_node":  # 2 s of bag at 0.05x: still playing when stopped
        return [str(files["bag"]), "--rate", "0.05"], "/bag_player/list_parameters"
    if name == "bag_recorder_node":
        return [str(files["dir"] / f"recorded_{tag}")], "/bag_recorder/list_parameters"
    raise AssertionError(f"no test set-up for node executable {name!r}; add one here")


def _wait_until_spinning(probe, service: str, process: subprocess.Popen) -> None:
    node, executor = probe
    client = node.create_client(ListParameters, service)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert process.poll() is None, f"exited with {process.returncode} before it was up"
            if client.wait_for_service(timeout_sec=0.5):
                future = client.call_async(ListParameters.Request())
                answered = time.monotonic() + 10.0
                while not future.done() and time.monotonic() < answered:
                    executor.spin_once(timeout_sec=0.1)
                if future.done():
                    return
        raise AssertionError(f"{service} did not answer within {START_TIMEOUT_S} s")
    finally:
        node.destroy_client(client)


def test_every_node_executable_is_covered() -> None:
    # a new node executable needs a row in _arguments (this test fails first)
    assert set(node_executables()) == {
        "segmentation_node",
        "fluoro_sim_node",
        "bag_player_node",
        "bag_recorder_node",
    }


@pytest.mark.parametrize("stop", ["sigint_twice", "sigterm"])
@pytest.mark.parametrize("name", sorted(node_executables()))
def test_node_exits_cleanly_on_repeated_sigint_and_on_sigterm(
    name: str, stop: str, files: dict[str, Path], probe
) -> None:
    arguments, service = _arguments(name, files, stop)
    process = subprocess.Popen(
        console_script_command(name, arguments),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output: dict[str, list[str]] = {"stdout": [], "stderr": []}
    readers = [
        threading.Thread(target=lambda s=stream, k=key: output[k].extend(s), daemon=True)
        for key, stream in (("stdout", process.stdout), ("stderr", process.stderr))
    ]
    for reader in readers:
        reader.start()
    try:
        _wait_until_spinning(probe, service, process)
        started = time.monotonic()
        if stop == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:
            process.send_signal(signal.SIGINT)
            time.sleep(SECOND_SIGNAL_AFTER_S)
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=EXIT_BOUND_S)
        took_s = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for reader in readers:
            reader.join(timeout=5.0)
    log = "".join(output["stderr"]) + "".join(output["stdout"])
    assert code == 0, f"{name} exited with {code} after {stop}:\n{log[-3000:]}"
    assert "Traceback" not in log, log[-3000:]
    assert took_s < EXIT_BOUND_S


def test_shutdown_signals_are_recorded_and_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with shutdown.ShutdownSignals() as signals:
        assert not signals.requested
        signal.raise_signal(signal.SIGINT)  # recorded: no KeyboardInterrupt
        signal.raise_signal(signal.SIGTERM)  # recorded: the process lives on
        assert signals.received == [signal.SIGINT, signal.SIGTERM] and signals.requested
        signals.ignore()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) == before
