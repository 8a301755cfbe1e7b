"""The Fast DDS profile every process of the package starts its ROS context with.

``config/fastdds.xml`` gives a participant a 16 MB shared-memory segment instead of Fast
DDS's 512 KB. One 512x512 frame's outputs are about 1.6 MB (two mono8 masks and the
labels, 256 KB each, the rgb8 overlay 768 KB): with a subscriber on every output the
default segment is full before the frame has been read, the shared-memory send fails
and the samples arrive only through reliable repair, one to several frames late (the
p95 tail of ``docs/benchmarks.md`` run G; run H measures the profile).

Fast DDS reads ``FASTDDS_DEFAULT_PROFILES_FILE`` when the first participant of a process
is created, so :func:`apply_dds_profile` must run before ``rclpy.init``. A value the
user has set (their own profile, or an empty string for none) is always kept.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from fluoro_perception.nodes.graph import find_share_file

#: Environment variable Fast DDS loads its default XML profiles from.
PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
#: The shipped profile, relative to a share directory.
PROFILE_FILE = "config/fastdds.xml"


def shipped_profile() -> Path | None:
    """``config/fastdds.xml`` of the source tree or the install; None when absent."""
    try:
        return find_share_file(PROFILE_FILE)
    except FileNotFoundError:
        return None


def apply_dds_profile(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Point Fast DDS at the shipped profile unless ``PROFILE_ENV`` is already set.

    Parameters
    ----------
    environ : mutable mapping, optional
        The environment to update (default ``os.environ``, i.e. this process and the
        processes it starts; a child's ``env`` dict for a subprocess).

    Returns
    -------
    str or None
        The profile file in effect: the user's value when set, else the shipped file
        (now set in ``environ``); None when the variable is unset and nothing is shipped.
    """
    environ = os.environ if environ is None else environ
    if PROFILE_ENV in environ:
        return environ[PROFILE_ENV]
    profile = shipped_profile()
    if profile is None:
        return None
    environ[PROFILE_ENV] = str(profile)
    return str(profile)
