"""The ROS side of the configs: declaring parameters, checking a change (rclpy imported lazily)."""

from __future__ import annotations

from typing import Any

from fluoro_perception.nodes.params.specs import (
    ParamSpec,
    config_from_flat,
    flatten_config,
    parameter_specs,
)

#: Lifecycle states in which a ``configure_only`` parameter may change.
CONFIGURABLE_STATES = ("unconfigured", "inactive")
CONFIGURE_ONLY_NOTE = (
    "settable while the node is unconfigured or inactive; used at the next configure"
)


def _ros_type(kind: str) -> int:
    from rcl_interfaces.msg import ParameterType

    return {
        "bool": ParameterType.PARAMETER_BOOL,
        "int": ParameterType.PARAMETER_INTEGER,
        "float": ParameterType.PARAMETER_DOUBLE,
        "str": ParameterType.PARAMETER_STRING,
        "str[]": ParameterType.PARAMETER_STRING_ARRAY,
        "int[]": ParameterType.PARAMETER_INTEGER_ARRAY,
        "float[]": ParameterType.PARAMETER_DOUBLE_ARRAY,
    }[kind]


def parameter_descriptor(spec: ParamSpec):
    """The ``rcl_interfaces/ParameterDescriptor`` of one parameter (ranges, read_only)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    info = spec.info
    description = info.description + (f" [{info.unit}]" if info.unit else "")
    descriptor = ParameterDescriptor(
        name=spec.name,
        type=_ros_type(spec.kind),
        description=description,
        read_only=info.read_only,
    )
    constraints = []
    if info.choices:
        constraints.append("one of " + ", ".join(repr(c) for c in info.choices))
    if info.configure_only:
        constraints.append(CONFIGURE_ONLY_NOTE)
    descriptor.additional_constraints = "; ".join(constraints)
    has_range = info.min_value is not None and info.max_value is not None
    if has_range and spec.kind == "float":
        descriptor.floating_point_range = [
            FloatingPointRange(
                from_value=float(info.min_value), to_value=float(info.max_value), step=0.0
            )
        ]
    elif has_range and spec.kind == "int":
        descriptor.integer_range = [
            IntegerRange(from_value=int(info.min_value), to_value=int(info.max_value), step=0)
        ]
    return descriptor


def declare_config(node, config_cls: type) -> Any:
    """Declare every parameter of ``config_cls`` on ``node`` and return the validated config.

    Values come from the node's overrides (``--params-file``, ``-p``, launch
    ``parameters``) on top of the dataclass defaults.

    Raises
    ------
    ValueError
        An override of the wrong type (e.g. an integer for a double parameter) or a value
        the config rejects; one line naming the parameter.
    """
    from rclpy.exceptions import InvalidParameterTypeException, ParameterException

    specs = parameter_specs(config_cls)
    values: dict[str, Any] = {}
    for spec in specs:
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        try:
            parameter = node.declare_parameter(spec.name, default, parameter_descriptor(spec))
        except InvalidParameterTypeException as exc:
            raise ValueError(
                f"parameter '{spec.name}' has the wrong type ({exc}); expected a {spec.kind}"
                + (
                    " (write doubles with a decimal point, e.g. 1.0)"
                    if spec.kind == "float"
                    else ""
                )
            ) from None
        except ParameterException as exc:
            raise ValueError(f"parameter '{spec.name}': {exc}") from None
        values[spec.name] = parameter.value
    return config_from_flat(config_cls, values)


def validate_parameter_change(
    config_cls: type, current: Any, parameters, state: str | None = None
) -> tuple[Any, str]:
    """Check a batch of changed ``rclpy.parameter.Parameter`` against the config.

    Parameters
    ----------
    config_cls : type
        The node's config dataclass.
    current : config_cls
        The node's current config (the base of the change).
    parameters : list of rclpy.parameter.Parameter
        The batch being set.
    state : str or None
        Lifecycle state label of the node (``"unconfigured"``, ``"inactive"``,
        ``"active"``, a transition such as ``"configuring"``); a change of a
        ``configure_only`` parameter is refused unless it is one of
        :data:`CONFIGURABLE_STATES`. None = not a lifecycle node (no such check).

    Returns
    -------
    (config, reason)
        The new config and ``""`` when the change is valid, else ``(None, reason)`` with
        a one-line reason for the ``SetParametersResult``.
    """
    values = {parameter.name: parameter.value for parameter in parameters}
    try:
        candidate = config_from_flat(config_cls, values, base=current)
    except (ValueError, TypeError) as exc:
        return None, str(exc)
    if state is not None and state not in CONFIGURABLE_STATES:
        specs = {spec.name: spec for spec in parameter_specs(config_cls)}
        old, new = flatten_config(current), flatten_config(candidate)
        locked = [
            name
            for name in values
            if specs[name].info.configure_only and old.get(name) != new.get(name)
        ]
        if locked:
            return None, (
                f"parameter '{locked[0]}' cannot change while the node is {state}: it is read "
                "at configure; deactivate the node, set it, then cleanup and configure"
            )
    return candidate, ""


def set_parameters_result(successful: bool, reason: str = ""):
    """A ``rcl_interfaces/SetParametersResult``."""
    from rcl_interfaces.msg import SetParametersResult

    return SetParametersResult(successful=successful, reason=reason)
