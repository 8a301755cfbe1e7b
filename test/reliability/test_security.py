"""Security: the runtime loads only ONNX, training checkpoints load with ``weights_only=True``,
and the node under DDS security (SROS2 environment) starts or fails with one clear line.

Model integrity by sha256 (model cards, ``model.expected_sha256``) is tested in
``test/core/test_model_registry.py``, ``test/core/test_engine.py`` and, through the node's
lifecycle, in ``test_faults.py``.

DDS security with the PyPI wheels: ``rcl`` finds a keystore made here with ``openssl``
(enclave ``/fluoro``: identity and permissions CA, node certificate and key, governance and
permissions signed as S/MIME), but the ``ros-fastdds`` 3.2 wheel is built without
``-DSECURITY=ON``, so creating a secured participant fails. The keystore test therefore
asserts whichever outcome the installed middleware allows: the node comes up active, or
it exits at once with that one reason (never a hang, a traceback or a crash loop).
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from fluoro_training.trainer import CHECKPOINT_FORMAT, load_checkpoint

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "src" / "fluoro_perception"
TRAINING = REPO / "src" / "fluoro_training"
#: modules that deserialize arbitrary Python objects
PICKLE_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "joblib",
    "shelve",
    "marshal",
    "cloudpickle",
}
#: runtime modules allowed to import fluoro_training lazily (torch baselines, bench export)
TRAINING_IMPORT_ALLOWED = {"bench/baselines.py", "cli/bench.py"}
START_TIMEOUT_S = 60.0


# ----------------------------------------------------------------------------- AST checks


def unsafe_loading(source: str) -> list[str]:
    """What in ``source`` could deserialize Python objects: one string per finding."""
    findings = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            names = []
        findings += [f"line {node.lineno}: imports {n}" for n in names if n in PICKLE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Attribute) and function.attr == "load":
            owner = function.value
            if isinstance(owner, ast.Name) and owner.id == "torch":
                findings.append(f"line {node.lineno}: torch.load")
        for keyword in node.keywords:
            if keyword.arg == "allow_pickle" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                findings.append(f"line {node.lineno}: allow_pickle={ast.unparse(keyword.value)}")
    return findings


def torch_loads_without_weights_only(source: str) -> list[int]:
    """Lines of ``torch.load(...)`` calls not passing the constant ``weights_only=True``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "load" or not (
            isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"
        ):
            continue
        safe = any(
            k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        )
        if not safe:
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import pickle\n", ["line 1: imports pickle"]),
        ("from joblib import load\n", ["line 1: imports joblib"]),
        ("import torch\nstate = torch.load(path)\n", ["line 2: torch.load"]),
        ("import numpy as np\nx = np.load(p, allow_pickle=True)\n", ["line 2: allow_pickle=True"]),
        ("import numpy as np\nx = np.load(p, allow_pickle=flag)\n", ["line 2: allow_pickle=flag"]),
        ("import numpy as np\nx = np.load(p, allow_pickle=False)\nimport onnx\n", []),
        ("import json\njson.load(f)\n", []),
    ],
)
def test_the_unsafe_loading_checker_finds_what_it_should(source, expected) -> None:
    assert unsafe_loading(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("torch.load(p)\n", [1]),
        ("torch.load(p, weights_only=False)\n", [1]),
        ("torch.load(p, map_location='cpu', weights_only=True)\n", []),
    ],
)
def test_the_weights_only_checker_finds_what_it_should(source, expected) -> None:
    assert torch_loads_without_weights_only(source) == expected


def test_runtime_never_deserializes_python_objects() -> None:
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) > 30  # the whole package, not an empty glob
    findings = {
        str(path.relative_to(RUNTIME)): unsafe_loading(path.read_text(encoding="utf-8"))
        for path in files
    }
    assert {name: found for name, found in findings.items() if found} == {}


def test_runtime_imports_training_code_only_in_the_bench_baselines() -> None:
    importers = set()
    for path in RUNTIME.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(m.split(".")[0] in ("fluoro_training", "torch") for m in modules):
                importers.add(str(path.relative_to(RUNTIME)))
    assert importers <= TRAINING_IMPORT_ALLOWED, importers - TRAINING_IMPORT_ALLOWED


def test_training_loads_every_checkpoint_with_weights_only() -> None:
    calls = 0
    for path in sorted(TRAINING.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        calls += source.count("torch.load(")
        assert torch_loads_without_weights_only(source) == [], path
    assert calls >= 1  # the checkpoint loader exists and was checked


class _Payload:
    """An arbitrary Python object; unpickling it would run code (``__reduce__``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_with_an_arbitrary_python_object_is_refused(tmp_path) -> None:
    marker = tmp_path / "code_ran"
    checkpoint = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": {}, "extra": _Payload(marker)}, checkpoint)
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_checkpoint(checkpoint)
    assert not marker.exists()  # nothing was executed while refusing it


def test_plain_tensor_checkpoint_still_loads(tmp_path) -> None:
    checkpoint = tmp_path / "good.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": {"w": torch.ones(2)}}, checkpoint)
    loaded = load_checkpoint(checkpoint)
    assert torch.equal(loaded["model"]["w"], torch.ones(2))


# ----------------------------------------------------------------------------- SROS2


def make_keystore(root: Path, enclave: str = "fluoro") -> Path:
    """A DDS-Security keystore for one enclave, made with openssl (as ``ros2 security`` would).

    Layout (rcl looks up ``<keystore>/enclaves/<enclave>``): ``identity_ca.cert.pem``,
    ``permissions_ca.cert.pem`` (one self-signed EC P-256 CA here), ``cert.pem`` /
    ``key.pem`` (the enclave's identity, CN = ``/<enclave>``), ``governance.p7s`` and
    ``permissions.p7s`` (the XML documents signed as S/MIME by the permissions CA).
    """
    enclave_dir = root / "enclaves" / enclave
    private = root / "private"
    enclave_dir.mkdir(parents=True)
    private.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ca_key, ca_cert = private / "ca.key.pem", root / "ca.cert.pem"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ca_key))
    openssl("req", "-x509", "-new", "-key", str(ca_key), "-out", str(ca_cert), "-days", "7",
            "-subj", "/CN=fluoro_test_ca")  # fmt: skip
    for name in ("identity_ca.cert.pem", "permissions_ca.cert.pem"):
        shutil.copy(ca_cert, enclave_dir / name)
    key, request = enclave_dir / "key.pem", private / "enclave.csr"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    openssl("req", "-new", "-key", str(key), "-out", str(request), "-subj", f"/CN=\\/{enclave}")
    openssl("x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(enclave_dir / "cert.pem"), "-days", "7")  # fmt: skip
    domains = "<domains><id_range><min>0</min><max>232</max></id_range></domains>"
    governance = (
        '<?xml version="1.0" encoding="UTF-8"?><dds><domain_access_rules><domain_rule>'
        f"{domains}<allow_unauthenticated_participants>false</allow_unauthenticated_participants>"
        "<enable_join_access_control>true</enable_join_access_control>"
        "<discovery_protection_kind>ENCRYPT</discovery_protection_kind>"
        "<liveliness_protection_kind>ENCRYPT</liveliness_protection_kind>"
        "<rtps_protection_kind>SIGN</rtps_protection_kind><topic_access_rules><topic_rule>"
        "<topic_expression>*</topic_expression>"
        "<enable_discovery_protection>true</enable_discovery_protection>"
        "<enable_liveliness_protection>true</enable_liveliness_protection>"
        "<enable_read_access_control>true</enable_read_access_control>"
        "<enable_write_access_control>true</enable_write_access_control>"
        "<metadata_protection_kind>ENCRYPT</metadata_protection_kind>"
        "<data_protection_kind>ENCRYPT</data_protection_kind>"
        "</topic_rule></topic_access_rules></domain_rule></domain_access_rules></dds>"
    )
    permissions = (
        f'<?xml version="1.0" encoding="UTF-8"?><dds><permissions><grant name="/{enclave}">'
        f"<subject_name>CN=/{enclave}</subject_name><validity>"
        "<not_before>2020-01-01T00:00:00</not_before><not_after>2100-01-01T00:00:00</not_after>"
        f"</validity><allow_rule>{domains}<publish><topics><topic>*</topic></topics></publish>"
        "<subscribe><topics><topic>*</topic></topics></subscribe></allow_rule>"
        "<default>DENY</default></grant></permissions></dds>"
    )
    for name, text in (("governance", governance), ("permissions", permissions)):
        document = private / f"{name}.xml"
        document.write_text(text, encoding="utf-8")
        openssl("smime", "-sign", "-text", "-in", str(document), "-out",
                str(enclave_dir / f"{name}.p7s"), "-signer", str(ca_cert), "-inkey", str(ca_key))  # fmt: skip
    return root


def run_node(model: Path, env_extra: dict[str, str], enclave: str | None) -> tuple[int | None, str]:
    """Start the node's real ``main`` in a process; (exit code or None if it is running, log)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **env_extra}
    command = [sys.executable, "-m", "fluoro_perception.nodes.segmentation_node", "--ros-args",
               "-p", f"model.path:={model}", "-p", "model.providers:=['CPUExecutionProvider']"]  # fmt: skip
    if enclave is not None:
        command += ["--enclave", enclave]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()  # a pipe read never blocks the deadline below
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            reader.join(timeout=5.0)
            return process.returncode, "".join(lines)
        if any("active: processing frames" in line for line in list(lines)):
            process.send_signal(signal.SIGINT)
            process.wait(timeout=20)
            reader.join(timeout=5.0)
            return None, "".join(lines)
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError(
        f"the node neither started nor failed in {START_TIMEOUT_S} s:\n{''.join(lines)}"
    )


def fatal_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "[FATAL]" in line]


@pytest.mark.ros
def test_enforced_security_with_a_missing_keystore_fails_at_once_with_one_line(
    tmp_path, grey_model
) -> None:
    missing = tmp_path / "no_keystore"
    code, log = run_node(
        grey_model,
        {
            "ROS_SECURITY_ENABLE": "true",
            "ROS_SECURITY_STRATEGY": "Enforce",
            "ROS_SECURITY_KEYSTORE": str(missing),
        },  # fmt: skip
        enclave=None,
    )
    assert code == 1, log
    (line,) = fatal_lines(log)
    assert "cannot start" in line and str(missing) in line and "ROS_SECURITY_" in line
    assert "Traceback" not in log


@pytest.mark.ros
def test_node_with_a_hand_made_keystore_starts_or_names_the_missing_dds_security(
    tmp_path, grey_model
) -> None:
    if shutil.which("openssl") is None:
        pytest.fail(
            "openssl is needed to build the test keystore; install it (apt install openssl)"
        )
    keystore = make_keystore(tmp_path / "keystore")
    code, log = run_node(
        grey_model,
        {
            "ROS_SECURITY_ENABLE": "true",
            "ROS_SECURITY_STRATEGY": "Enforce",
            "ROS_SECURITY_KEYSTORE": str(keystore),
        },  # fmt: skip
        enclave="/fluoro",
    )
    # rcl accepted the keystore layout and picked the enclave
    assert f"Found security directory: {keystore}/enclaves/fluoro" in log, log
    if code is None:
        assert "configured: model" in log  # secured participant up, node active
        return
    # the installed Fast DDS lacks the security plugins (the PyPI wheel): one clear line
    assert code == 1, log
    (line,) = fatal_lines(log)
    assert "security libraries" in line and "-DSECURITY=ON" in line, line
    assert "Traceback" not in log
