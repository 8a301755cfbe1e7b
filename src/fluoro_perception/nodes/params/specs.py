"""Parameter specs: a config field's ROS parameter description, and flat dotted names.

A field declared with :func:`_param` carries a :class:`ParamInfo` (description, unit,
range, choices, when it can change); :func:`parameter_specs` walks a config class
(nested configs with dots, the core configs' scalar fields described by their numpydoc
"Attributes") into :class:`ParamSpec` rows; :func:`flatten_config` and
:func:`config_from_flat` go between a config instance and ``{dotted name: value}``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Keys of the per-field metadata dictionary (``dataclasses.field(metadata=...)``).
_META_KEY = "ros_param"


@dataclass(frozen=True)
class ParamInfo:
    """How one config field appears as a ROS parameter."""

    description: str
    unit: str = ""
    min_value: float | int | None = None
    max_value: float | int | None = None
    read_only: bool = False
    choices: tuple[str, ...] = ()
    #: settable only while the (lifecycle) node is unconfigured or inactive; it is read
    #: at the next configure
    configure_only: bool = False

    def __post_init__(self) -> None:
        if self.read_only and self.configure_only:
            raise ValueError("a parameter is read_only or configure_only, not both")

    @property
    def change(self) -> str:
        """When a change takes effect: ``restart``, ``configure`` or ``""`` (at once)."""
        return "restart" if self.read_only else "configure" if self.configure_only else ""


def _param(
    default: Any,
    description: str,
    *,
    unit: str = "",
    min_value: float | int | None = None,
    max_value: float | int | None = None,
    read_only: bool = False,
    choices: tuple[str, ...] = (),
    configure_only: bool = False,
) -> Any:
    """A dataclass field carrying its ROS parameter description."""
    info = ParamInfo(description, unit, min_value, max_value, read_only, choices, configure_only)
    return field(default=default, metadata={_META_KEY: info})


def _check_own_fields(instance: Any) -> None:
    """Validate range and choices of every field declared with :func:`_param`.

    Raises
    ------
    ValueError
        One line naming the field, the value, and what is expected.
    """
    for spec in dataclasses.fields(instance):
        info = spec.metadata.get(_META_KEY)
        if info is None:
            continue
        value = getattr(instance, spec.name)
        label = f"{type(instance).__name__}.{spec.name}"
        if info.choices and value not in info.choices:
            raise ValueError(f"{label}={value!r}; expected one of {list(info.choices)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if info.min_value is not None and value < info.min_value:
            raise ValueError(
                f"{label}={value!r} is below the minimum {info.min_value}{_unit(info)}; "
                f"use a value in [{info.min_value}, {info.max_value}]"
            )
        if info.max_value is not None and value > info.max_value:
            raise ValueError(
                f"{label}={value!r} is above the maximum {info.max_value}{_unit(info)}; "
                f"use a value in [{info.min_value}, {info.max_value}]"
            )


def _unit(info: ParamInfo) -> str:
    return f" {info.unit}" if info.unit else ""


@dataclass(frozen=True)
class ParamSpec:
    """One declared ROS parameter, derived from a config field.

    ``kind`` is one of ``bool``, ``int``, ``float``, ``str``, ``str[]``, ``int[]``,
    ``float[]`` (the ROS parameter type). ``external`` marks a field of a core config
    (geometry, tracker) whose default lives in the core module.
    """

    name: str
    kind: str
    default: Any
    info: ParamInfo
    external: bool = False


def _numpydoc_attributes(cls: type) -> dict[str, str]:
    """Field descriptions from the "Attributes" section of a numpydoc class docstring."""
    lines = (cls.__doc__ or "").expandtabs().splitlines()
    descriptions: dict[str, str] = {}
    in_section = False
    names: list[str] = []
    base_indent = 0
    for index, line in enumerate(lines):
        stripped = line.strip()
        underline = index + 1 < len(lines) and set(lines[index + 1].strip()) == {"-"}
        if underline and stripped:
            # a numpydoc section header: only "Attributes" is read
            in_section = stripped == "Attributes"
            base_indent = len(line) - len(line.lstrip())
            names = []
            continue
        if not in_section or not stripped or set(stripped) == {"-"}:
            continue
        indent = len(line) - len(line.lstrip())
        header = re.match(r"^([A-Za-z_][A-Za-z0-9_, ]*?)\s*:\s*\S", stripped)
        if header and indent <= base_indent:
            names = [name.strip() for name in header.group(1).split(",")]
            for name in names:
                descriptions[name] = ""
        else:
            for name in names:
                descriptions[name] = (descriptions[name] + " " + stripped).strip()
    return descriptions


def _kind_of(hint: Any, default: Any) -> str | None:
    """ROS parameter kind for a field type, or None when it has no ROS equivalent."""
    origin = typing.get_origin(hint)
    if hint is bool:
        return "bool"
    if hint is int:
        return "int"
    if hint is float:
        return "float"
    if hint is str:
        return "str"
    if origin is tuple:
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        element = {str: "str[]", int: "int[]", float: "float[]"}
        if len(set(args)) == 1 and args[0] in element:
            return element[args[0]]
        return None
    if hint is None or hint is Any:
        # unannotated: fall back on the default's type
        for kind_type, kind in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
            if type(default) is kind_type:
                return kind
    return None


def _field_default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return dataclasses.MISSING


def parameter_specs(config_cls: type, prefix: str = "") -> list[ParamSpec]:
    """Every ROS parameter of a config class, in declaration order (nested with dots).

    Fields of the core configs whose type has no ROS parameter equivalent (``None``
    defaults, dictionaries, nested tuples) are not mirrored and keep their defaults.
    """
    try:
        hints = typing.get_type_hints(config_cls)
    except (NameError, TypeError):
        hints = {}
    attributes = _numpydoc_attributes(config_cls)
    specs: list[ParamSpec] = []
    for spec in dataclasses.fields(config_cls):
        if not spec.init:
            continue
        default = _field_default(spec)
        hint = hints.get(spec.name)
        name = prefix + spec.name
        if dataclasses.is_dataclass(hint) or dataclasses.is_dataclass(default):
            nested_cls = hint if isinstance(hint, type) else type(default)
            specs.extend(parameter_specs(nested_cls, prefix=name + "."))
            continue
        if default is dataclasses.MISSING:
            continue
        kind = _kind_of(hint, default)
        if kind is None:
            continue
        info = spec.metadata.get(_META_KEY)
        external = info is None
        if external:
            text = attributes.get(spec.name) or f"{config_cls.__name__}.{spec.name}"
            text = text.replace("``", "`")
            info = ParamInfo(description=f"{text} (core {config_cls.__name__})")
        specs.append(ParamSpec(name, kind, default, info, external))
    return specs


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted parameter name: value}`` of every mirrored field of a config instance."""
    specs = {s.name for s in parameter_specs(type(config))}
    flat: dict[str, Any] = {}

    def walk(obj: Any, path: str) -> None:
        for spec in dataclasses.fields(obj):
            value = getattr(obj, spec.name)
            name = path + spec.name
            if dataclasses.is_dataclass(value):
                walk(value, name + ".")
            elif name in specs:
                flat[name] = value

    walk(config, prefix)
    return flat


def _coerce(spec: ParamSpec, value: Any) -> Any:
    """A parameter value in the field's Python type, or TypeError naming what is expected."""
    if hasattr(value, "tolist"):  # numpy / array.array from rclpy array parameters
        value = value.tolist()
    elif type(value).__name__ == "array":
        value = list(value)
    kind = spec.kind
    scalar_types = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}
    if kind in scalar_types:
        ok = isinstance(value, scalar_types[kind]) and not (
            kind != "bool" and isinstance(value, bool)
        )
        if not ok:
            raise TypeError(
                f"parameter '{spec.name}' = {value!r} ({type(value).__name__}); expected type {kind}"
            )
        return float(value) if kind == "float" else value
    element_kind = kind[:-2]
    if not isinstance(value, list | tuple):
        raise TypeError(
            f"parameter '{spec.name}' = {value!r}; expected a list of {element_kind} values"
        )
    element_spec = ParamSpec(spec.name, element_kind, None, spec.info)
    return tuple(_coerce(element_spec, item) for item in value)


def config_from_flat(config_cls: type, values: Mapping[str, Any], base: Any | None = None) -> Any:
    """Build and validate a config from ``{dotted name: value}`` on top of ``base``.

    Raises
    ------
    ValueError
        An unknown parameter name (closest names suggested) or a value the config
        rejects (out of range, not a choice, ...).
    TypeError
        A value of the wrong type.
    """
    specs = {s.name: s for s in parameter_specs(config_cls)}
    unknown = [name for name in values if name not in specs]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, list(specs), n=3)
        hint = f" (did you mean {close}?)" if close else ""
        raise ValueError(
            f"unknown parameter '{name}' for {config_cls.__name__}{hint}; "
            "see docs/ros_interface.md for the list"
        )
    coerced = {name: _coerce(specs[name], value) for name, value in values.items()}
    base = base if base is not None else config_cls()

    def rebuild(obj: Any, path: str) -> Any:
        changes: dict[str, Any] = {}
        for spec in dataclasses.fields(obj):
            if not spec.init:
                continue
            name = path + spec.name
            current = getattr(obj, spec.name)
            if dataclasses.is_dataclass(current):
                if any(key.startswith(name + ".") for key in coerced):
                    changes[spec.name] = rebuild(current, name + ".")
            elif name in coerced:
                changes[spec.name] = coerced[name]
        return dataclasses.replace(obj, **changes) if changes else obj

    return rebuild(base, "")
