"""The parameter table of a config class as Markdown (the tables of ``docs/ros_interface.md``)."""

from __future__ import annotations

from typing import Any

from fluoro_perception.nodes.params.config import SegmentationNodeConfig
from fluoro_perception.nodes.params.specs import parameter_specs


def _format_value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def parameters_markdown(config_cls: type = SegmentationNodeConfig) -> str:
    """The parameter table of a config class as a Markdown table."""
    rows = [
        "| parameter | type | default | unit | range / choices | change | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in parameter_specs(config_cls):
        info = spec.info
        if info.choices:
            allowed = ", ".join(f'"{c}"' for c in info.choices)
        elif info.min_value is not None or info.max_value is not None:
            allowed = f"[{info.min_value}, {info.max_value}]"
        else:
            allowed = ""
        description = info.description.replace("|", "\\|")
        rows.append(
            f"| `{spec.name}` | {spec.kind} | `{_format_value(spec.default)}` | {info.unit} | "
            f"{allowed} | {info.change} | {description} |"
        )
    return "\n".join(rows) + "\n"
