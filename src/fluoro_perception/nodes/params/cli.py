"""``python -m fluoro_perception.nodes.params {yaml,markdown} [--node NAME]``.

Prints ``config/segment.yaml`` (``yaml``) or a parameter table of ``docs/ros_interface.md``
(``markdown``).
"""

from __future__ import annotations

import argparse
import sys

from fluoro_perception.nodes.params.config import CONFIG_CLASSES
from fluoro_perception.nodes.params.docs_table import parameters_markdown
from fluoro_perception.nodes.params.yaml_io import config_to_yaml_text


def main(argv: list[str] | None = None) -> int:
    """``python -m fluoro_perception.nodes.params {yaml,markdown} [--node NAME]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fluoro_perception.nodes.params",
        description="Print the node parameters as ros__parameters YAML or as a Markdown table.",
    )
    parser.add_argument("format", choices=("yaml", "markdown"))
    parser.add_argument("--node", choices=sorted(CONFIG_CLASSES), default="segmentation_node")
    args = parser.parse_args(argv)
    config_cls = CONFIG_CLASSES[args.node]
    if args.format == "yaml":
        sys.stdout.write(config_to_yaml_text(config_cls()))
    else:
        sys.stdout.write(parameters_markdown(config_cls))
    return 0
