"""The shipped Fast DDS profile: what it sets, that Fast DDS accepts it, that nodes use it.

Its effect (every output of every frame reaches a subscriber on all topics) is a figure
of ``fluoro-perception bench --subscribe all`` (docs/benchmarks.md run H), not a test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fluoro_perception.nodes import dds_profile, shutdown
from fluoro_perception.nodes.dds_profile import PROFILE_ENV, apply_dds_profile, shipped_profile

REPO = Path(__file__).resolve().parents[2]
NS = {"dds": "http://www.eprosima.com"}
#: One 512x512 frame's outputs: guidewire and stent masks and labels (mono8) plus the
#: rgb8 overlay [bytes].
FRAME_OUTPUT_BYTES = 3 * 512 * 512 + 3 * 512 * 512


def test_unset_variable_gets_the_shipped_profile():
    environ: dict[str, str] = {}
    assert apply_dds_profile(environ) == str(REPO / "config" / "fastdds.xml")
    assert environ == {PROFILE_ENV: str(REPO / "config" / "fastdds.xml")}


@pytest.mark.parametrize("value", ["/etc/my_profile.xml", ""])
def test_a_value_the_user_set_is_kept(value):
    environ = {PROFILE_ENV: value}
    assert apply_dds_profile(environ) == value
    assert environ == {PROFILE_ENV: value}


def test_nothing_is_set_when_no_profile_is_shipped(monkeypatch):
    monkeypatch.setattr(dds_profile, "shipped_profile", lambda: None)
    environ: dict[str, str] = {}
    assert apply_dds_profile(environ) is None and environ == {}


def test_shipped_profile_holds_several_frames_of_every_output():
    root = ET.parse(shipped_profile()).getroot()
    descriptors = {
        d.findtext("dds:transport_id", namespaces=NS): d
        for d in root.iterfind(".//dds:transport_descriptor", NS)
    }
    kinds = {name: d.findtext("dds:type", namespaces=NS) for name, d in descriptors.items()}
    assert sorted(kinds.values()) == ["SHM", "UDPv4"]  # other hosts still reachable
    shm = next(d for name, d in descriptors.items() if kinds[name] == "SHM")
    assert int(shm.findtext("dds:segment_size", namespaces=NS)) >= 8 * FRAME_OUTPUT_BYTES
    participant = root.find(".//dds:participant", NS)
    assert participant.get("is_default_profile") == "true"
    used = [
        t.text for t in participant.iterfind("dds:rtps/dds:userTransports/dds:transport_id", NS)
    ]
    assert sorted(used) == sorted(descriptors)
    assert participant.findtext("dds:rtps/dds:useBuiltinTransports", namespaces=NS) == "false"


@pytest.mark.ros
@pytest.mark.parametrize("broken", [False, True])
def test_fast_dds_loads_the_profile_without_errors(tmp_path, broken):
    profile = shipped_profile()
    if broken:  # the control: a profile Fast DDS rejects is reported on stderr
        text = profile.read_text().replace("segment_size>", "segment_bytes>")
        profile = tmp_path / "broken.xml"
        profile.write_text(text)
    code = "import rclpy; rclpy.init(); rclpy.create_node('probe').destroy_node(); rclpy.shutdown()"
    env = {**os.environ, PROFILE_ENV: str(profile), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert ("XMLPARSER" in result.stderr) == broken, result.stderr


def test_node_processes_apply_the_profile_before_the_first_participant(monkeypatch):
    import rclpy

    seen: list[str | None] = []

    def fake_init(args=None):
        seen.append(os.environ.get(PROFILE_ENV))
        raise RuntimeError("stop here")

    monkeypatch.setenv(PROFILE_ENV, "")  # so that undoing restores the session's value
    monkeypatch.delenv(PROFILE_ENV)
    monkeypatch.setattr(rclpy, "init", fake_init)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit):
            shutdown.run_node(lambda: None, "probe", [])
    finally:  # run_node leaves its signal handlers installed when the start fails
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert seen == [str(shipped_profile())]
