"""Command-line values converted without pydantic, where the conversion is plain.

Typer (0.29) converts every option and argument through a pydantic TypeAdapter, and importing
pydantic costs 0.1-0.2 s of every command's start: more than hermesctl's own work for `ps`.
Our parameters are str, list[str], bool flags, int and float without constraints; for those, and for the
values whose meaning is beyond doubt (a str; a decimal literal like `20`, `-1`, `0.5`), the
value is converted here exactly as pydantic would. Everything else (an annotation with a
parser, a range or another type; a number written any other way: `1e3`, ` 5`, `nan`, `x`)
goes to typer's own conversion, so its errors and edge cases stay typer's.

`install()` is a no-op unless typer has the one internal hook it replaces.
"""
import re
import typing

_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def _plain_kind(descriptor) -> str | None:
    """Which plain conversion an annotation needs: str, list, int, float, or None (typer's)."""
    info, annotation = descriptor.parameter_info, descriptor.annotation
    if descriptor.file_annotation is not None or getattr(info, "parser", None) is not None:
        return None
    if annotation is str:
        return "str"
    if annotation is bool:
        return "bool"
    if typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,):
        return "list"
    if annotation in (int, float) and info.min is None and info.max is None and not info.clamp:
        return annotation.__name__
    return None


_UNSET = object()


def _plain_value(kind: str, value):
    """The converted value, or _UNSET when typer's own conversion must decide."""
    if kind == "str":
        return value if isinstance(value, str) else _UNSET
    if kind == "bool":  # a flag's own True/False; "yes", "0", ... are typer's
        return value if isinstance(value, bool) else _UNSET
    if kind == "list":
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return items if all(isinstance(i, str) for i in items) else _UNSET
    if isinstance(value, bool):
        return _UNSET
    if kind == "int":
        if isinstance(value, int):
            return value
        return int(value) if isinstance(value, str) and _INT.fullmatch(value) else _UNSET
    if isinstance(value, (int, float)):
        return float(value)
    return float(value) if isinstance(value, str) and _DECIMAL.fullmatch(value) else _UNSET


def install() -> None:
    try:
        import typer.core as core
        from typer._coercion import RuntimeParam
    except ImportError:
        return
    full_build = getattr(core, "build_runtime_param", None)
    if full_build is None or getattr(full_build, "_hermesctl_plain", False):
        return

    class PlainRuntimeParam(RuntimeParam):
        """str / list[str] / int / float without constraints; typer's own param otherwise."""

        def _coerce_value(self, value, param, ctx):
            converted = _plain_value(self._kind, value)
            if converted is not _UNSET:
                return converted
            if self._full is None:
                object.__setattr__(self, "_full", full_build(self._descriptor))
            return self._full._coerce_value(value, param=param, ctx=ctx)

    def build_runtime_param(descriptor):
        kind = _plain_kind(descriptor)
        if kind is None:
            return full_build(descriptor)
        runtime = PlainRuntimeParam(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)
        for name, value in (("_kind", kind), ("_descriptor", descriptor), ("_full", None)):
            object.__setattr__(runtime, name, value)
        return runtime

    build_runtime_param._hermesctl_plain = True
    core.build_runtime_param = build_runtime_param
