"""Test-session set-up shared by every test.

DDS isolation: a random ROS_DOMAIN_ID per test session and localhost-only discovery,
so parallel runs (and other machines) never hear each other. Set before rclpy is
imported anywhere.
"""

import os
import random

os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 101))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("OMP_NUM_THREADS", "2")
# matplotlib must never try to open a window in tests
os.environ.setdefault("MPLBACKEND", "Agg")
