"""Pure tests of the typed node configs: YAML <-> dataclass, validation, Markdown table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fluoro_perception.core.geometry import GeometryConfig
from fluoro_perception.core.tracking import TrackerConfig
from fluoro_perception.nodes import params
from fluoro_perception.nodes.params import SegmentationNodeConfig, SimNodeConfig

REPO = Path(__file__).resolve().parents[2]


def test_shipped_segment_yaml_is_the_generated_defaults() -> None:
    shipped = (REPO / "config" / "segment.yaml").read_text(encoding="utf-8")
    assert shipped == params.config_to_yaml_text(SegmentationNodeConfig()), (
        "config/segment.yaml is out of date: regenerate with "
        "`python -m fluoro_perception.nodes.params yaml > config/segment.yaml`"
    )
    assert params.load_config_yaml(REPO / "config" / "segment.yaml") == SegmentationNodeConfig()


@pytest.mark.parametrize("config_cls", [SegmentationNodeConfig, SimNodeConfig])
def test_yaml_round_trip_of_changed_values(tmp_path: Path, config_cls: type) -> None:
    changed = {
        SegmentationNodeConfig: {
            "pixel_spacing_m": 1.5e-4,
            "model.providers": ["CPUExecutionProvider"],
            "qos.input": "reliable",
            "geometry.wire_threshold": 0.4,
            "tracker.max_coast_frames": 3,
            "tracking_enabled": False,
        },
        SimNodeConfig: {"fps": 25.0, "encoding": "mono16", "scenario": "dual"},
    }[config_cls]
    config = params.config_from_flat(config_cls, changed)
    path = tmp_path / "p.yaml"
    path.write_text(params.config_to_yaml_text(config, include_external=True), encoding="utf-8")
    node_name = "segmentation_node" if config_cls is SegmentationNodeConfig else "fluoro_sim_node"
    assert params.load_config_yaml(path, config_cls, node_name) == config


def test_nested_names_reach_the_core_configs() -> None:
    config = params.config_from_flat(
        SegmentationNodeConfig,
        {"geometry.max_wires": 1, "tracker.gate_px": 25, "model.fp16": True},
    )
    assert config.geometry == dataclasses.replace(GeometryConfig(), max_wires=1)
    # an integer for a double is accepted and stored as float
    assert config.tracker.gate_px == 25.0 and isinstance(config.tracker.gate_px, float)
    assert config.model.fp16 is True


def test_yaml_sections_for_node_and_namespace(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    max_age_s: 0.25\n    min_tip_confidence: 0.1\n"
        "/fluoro/segmentation_node:\n  ros__parameters:\n    max_age_s: 0.75\n"
        "other_node:\n  ros__parameters:\n    max_age_s: 9.0\n",
        encoding="utf-8",
    )
    config = params.load_config_yaml(path, namespace="fluoro")
    # the node-specific section comes later and wins; other nodes' sections are ignored
    assert (config.max_age_s, config.min_tip_confidence) == (0.75, 0.1)


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"max_age_s": 0.0}, ValueError, r"max_age_s=0.0 is below the minimum 0.001"),
        ({"min_tip_confidence": 1.5}, ValueError, r"above the maximum 1.0"),
        ({"qos.input": "fast"}, ValueError, r"QosParams.input='fast'; expected one of"),
        ({"bit_depth": 10}, ValueError, r"bit_depth=10; expected 0 \(auto\), 12 or 16"),
        ({"max_age": 0.5}, ValueError, r"unknown parameter 'max_age'.*did you mean"),
        (
            {"pixel_spacing_m": "small"},
            TypeError,
            r"'pixel_spacing_m' = 'small' \(str\); expected type float",
        ),
        ({"tracking_enabled": 1}, TypeError, r"expected type bool"),
        ({"geometry.max_wires": 2.5}, TypeError, r"expected type int"),
        ({"model.providers": []}, ValueError, r"model.providers is empty"),
        ({"model.providers": "CPUExecutionProvider"}, TypeError, r"expected a list of str"),
    ],
)
def test_invalid_values_name_the_parameter(values: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        params.config_from_flat(SegmentationNodeConfig, values)


def test_core_config_validation_is_used() -> None:
    # GeometryConfig validates its own fields: the message comes from the core
    with pytest.raises(ValueError, match="wire_threshold"):
        params.config_from_flat(SegmentationNodeConfig, {"geometry.wire_threshold": 1.5})


def test_validate_parameter_change_returns_a_reason() -> None:
    class FakeParameter:  # the two attributes rclpy.parameter.Parameter has
        def __init__(self, name: str, value: object) -> None:
            self.name, self.value = name, value

    current = SegmentationNodeConfig()
    new, reason = params.validate_parameter_change(
        SegmentationNodeConfig, current, [FakeParameter("min_tip_confidence", 0.6)]
    )
    assert reason == "" and new.min_tip_confidence == 0.6
    new, reason = params.validate_parameter_change(
        SegmentationNodeConfig, current, [FakeParameter("min_tip_confidence", -1.0)]
    )
    assert new is None
    assert "min_tip_confidence=-1.0 is below the minimum 0.0" in reason
    assert "\n" not in reason


def test_specs_mirror_every_scalar_field_of_the_core_configs() -> None:
    names = {spec.name for spec in params.parameter_specs(SegmentationNodeConfig)}
    for config_cls, prefix in ((GeometryConfig, "geometry."), (TrackerConfig, "tracker.")):
        for field in dataclasses.fields(config_cls):
            if isinstance(field.default, bool | int | float | str):
                assert prefix + field.name in names
    assert {"model.path", "qos.input", "pixel_spacing_m", "autostart"} <= names


def test_core_fields_take_their_descriptions_from_the_docstrings() -> None:
    specs = {s.name: s for s in params.parameter_specs(SegmentationNodeConfig)}
    description = specs["geometry.wire_threshold"].info.description
    assert description.startswith("Guidewire probability")
    assert specs["geometry.wire_threshold"].external
    assert not specs["max_age_s"].external


def test_numpydoc_attribute_parser_on_a_hand_written_docstring() -> None:
    class Example:
        """Title.

        Attributes
        ----------
        alpha_px : float
            First line
            second line.
        beta, gamma : int
            Shared.

        Notes
        -----
        not_a_field : int
            Must not be read.
        """

    assert params._numpydoc_attributes(Example) == {
        "alpha_px": "First line second line.",
        "beta": "Shared.",
        "gamma": "Shared.",
    }


def test_markdown_table_has_a_row_per_parameter() -> None:
    table = params.parameters_markdown(SegmentationNodeConfig)
    lines = table.strip().splitlines()
    specs = params.parameter_specs(SegmentationNodeConfig)
    assert len(lines) == 2 + len(specs)
    assert lines[0].startswith("| parameter | type | default |")
    row = next(line for line in lines if line.startswith("| `max_age_s` |"))
    assert "| float | `0.5` | s | [0.001, 60.0] |" in row
    row = next(line for line in lines if line.startswith("| `qos.input` |"))
    assert '"sensor_data", "reliable"' in row and "| configure |" in row
    row = next(line for line in lines if line.startswith("| `autostart` |"))
    assert "| restart |" in row


def test_descriptors_carry_ranges_and_read_only() -> None:
    from rcl_interfaces.msg import ParameterType

    specs = {s.name: s for s in params.parameter_specs(SegmentationNodeConfig)}
    descriptor = params.parameter_descriptor(specs["max_age_s"])
    assert descriptor.type == ParameterType.PARAMETER_DOUBLE
    assert descriptor.floating_point_range[0].from_value == 0.001
    assert descriptor.floating_point_range[0].to_value == 60.0
    assert "[s]" in descriptor.description and not descriptor.read_only
    descriptor = params.parameter_descriptor(specs["diagnostics_period_s"])
    assert descriptor.read_only
    descriptor = params.parameter_descriptor(specs["qos.input_depth"])
    assert descriptor.integer_range[0].to_value == 100
    # read at configure: not read-only (settable while unconfigured/inactive), and says so
    assert not descriptor.read_only
    assert descriptor.additional_constraints == params.CONFIGURE_ONLY_NOTE
    descriptor = params.parameter_descriptor(specs["qos.input"])
    assert descriptor.additional_constraints.startswith("one of 'sensor_data', 'reliable'; ")
    descriptor = params.parameter_descriptor(specs["model.providers"])
    assert descriptor.type == ParameterType.PARAMETER_STRING_ARRAY


def test_model_and_qos_are_configure_only_and_locked_while_active() -> None:
    specs = params.parameter_specs(SegmentationNodeConfig)
    configure_only = {s.name for s in specs if s.info.configure_only}
    assert configure_only == {s.name for s in specs if s.name.startswith(("model.", "qos."))}
    assert not any(s.info.read_only for s in specs if s.name in configure_only)
    current = SegmentationNodeConfig()
    change = [_Parameter("model.path", "/models/other.onnx")]
    for state in ("unconfigured", "inactive"):
        config, reason = params.validate_parameter_change(
            SegmentationNodeConfig, current, change, state
        )
        assert reason == "" and config.model.path == "/models/other.onnx"
    for state in ("active", "configuring"):
        config, reason = params.validate_parameter_change(
            SegmentationNodeConfig, current, change, state
        )
        assert config is None
        assert f"'model.path' cannot change while the node is {state}" in reason
        assert "deactivate the node, set it, then cleanup and configure" in reason
    # setting the value it already has is no change: accepted while active
    same = [_Parameter("model.path", ""), _Parameter("max_age_s", 0.2)]
    config, reason = params.validate_parameter_change(
        SegmentationNodeConfig, current, same, "active"
    )
    assert reason == "" and config.max_age_s == 0.2
    # a range error is reported before the state check
    _, reason = params.validate_parameter_change(
        SegmentationNodeConfig, current, [_Parameter("qos.input_depth", 0)], "active"
    )
    assert "below the minimum" in reason
    with pytest.raises(ValueError, match="not both"):
        params.ParamInfo("x", read_only=True, configure_only=True)


class _Parameter:
    """What validate_parameter_change reads of an ``rclpy.parameter.Parameter``."""

    def __init__(self, name: str, value: object) -> None:
        self.name, self.value = name, value


def test_cli_prints_yaml_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert params.main(["markdown", "--node", "fluoro_sim_node"]) == 0
    assert "| `fps` | float | `10.0` | Hz |" in capsys.readouterr().out
    assert params.main(["yaml"]) == 0
    assert capsys.readouterr().out == params.config_to_yaml_text(SegmentationNodeConfig())


def test_malformed_yaml_file_gives_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("/**:\n  ros__parameters: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is not valid YAML") as info:
        params.load_config_yaml(path)
    assert "\n" not in str(info.value)
    path.write_text("/**:\n  max_age_s: 1.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no 'ros__parameters'"):
        params.load_config_yaml(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        params.load_config_yaml(tmp_path / "missing.yaml")


def test_docs_carry_the_generated_parameter_tables() -> None:
    docs = (REPO / "docs" / "ros_interface.md").read_text(encoding="utf-8")
    for config_cls in (SegmentationNodeConfig, SimNodeConfig):
        assert params.parameters_markdown(config_cls) in docs, (
            f"docs/ros_interface.md has an outdated {config_cls.__name__} table: paste the "
            "output of `python -m fluoro_perception.nodes.params markdown [--node ...]`"
        )
