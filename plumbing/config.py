"""Configuration as frozen dataclasses, validated once at the edge, with the click options
derived from them, so help text, choices, bounds and defaults live in one place.

    @dataclass(frozen=True)
    class Job:
        n: int = knob(1000, "Number of images.", lo=1, hi=10_000_000)
        mode: str = knob("fast", "How.", choices=("fast", "slow"))

        def __post_init__(self) -> None:
            check_fields(self)

    @click.command()
    @options_from(Job)
    def make(**kw): Job(**kw)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

import click

from plumbing.errors import UsageError

_MISSING = dataclasses.MISSING


def knob(default: Any = _MISSING, help: str = "", *, lo: float | None = None,
         hi: float | None = None, choices: Sequence[str] | None = None,
         flag: str | None = None, short: str | None = None, metavar: str | None = None,
         cli: bool = True, default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field that knows its help text, bounds and choices.

    ``flag``: the option's name when it is not ``--field-name``; ``cli=False`` keeps the
    field out of the command line (set by code only).
    """
    meta = {"help": help, "lo": lo, "hi": hi, "choices": tuple(choices) if choices else None,
            "flag": flag, "short": short, "metavar": metavar, "cli": cli}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), type(None) in typing.get_args(hint)
    return hint, False


def _type_ok(value: Any, base: Any) -> bool:
    if base is bool:
        return isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is float:
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value))
    if base is str:
        return isinstance(value, str)
    origin = typing.get_origin(base)
    if origin is tuple:
        return isinstance(value, tuple)
    return True  # nested dataclasses and other types check themselves


def _type_word(base: Any) -> str:
    return {bool: "true or false", int: "a whole number", float: "a finite number",
            str: "text"}.get(base, getattr(base, "__name__", str(base)))


def _num(v: float) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"  # 10000000, not 1e+07


def check_fields(obj: Any) -> None:
    """Check every field of a dataclass against its type hint and its knob's bounds."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        base, optional = _split_optional(hints[f.name])
        name = flag_name(f) if f.metadata.get("cli", True) else f.name
        if value is None:
            if not optional:
                raise UsageError(f"{name} must be set")
            continue
        if not _type_ok(value, base):
            raise UsageError(f"{name} must be {_type_word(base)}, got {value!r}")
        lo, hi, choices = (f.metadata.get(k) for k in ("lo", "hi", "choices"))
        if choices and value not in choices:
            raise UsageError(f"{name} must be one of {', '.join(map(str, choices))}, "
                             f"got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = (f"within {_num(lo)}..{_num(hi)}" if lo is not None and hi is not None
                    else f"at least {_num(lo)}" if lo is not None else f"at most {_num(hi)}")
            raise UsageError(f"{name} must be {span}, got {value!r}")


def options_from(cls: type, exclude: Sequence[str] = (),
                 choices: dict[str, Sequence[str]] | None = None, **defaults: Any) -> Callable:
    """A decorator adding one click option per CLI field of ``cls``, in field order.

    Bounds are checked by the dataclass (one message style for the CLI and the API); click
    only parses the type. ``defaults`` override a field's default for this command, and
    ``choices`` a field's choices (a command that accepts more than the dataclass does).
    """
    hints = _hints(cls)
    decorators = []
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.metadata.get("cli", True) or "help" not in f.metadata:
            continue
        base, _ = _split_optional(hints[f.name])
        default = defaults.get(f.name, f.default)
        if default is _MISSING and f.default_factory is not _MISSING:
            default = f.default_factory()
        required = default is _MISSING
        names = [flag_name(f), f.name] + ([f.metadata["short"]] if f.metadata["short"] else [])
        kw: dict[str, Any] = {"help": f.metadata["help"], "metavar": f.metadata["metavar"]}
        if base is bool:
            if default is True:
                names[0] = f"{names[0]}/--no-{names[0][2:]}"
                kw.update(default=True, show_default=True)
            else:
                kw.update(is_flag=True, default=False)
        else:
            allowed = (choices or {}).get(f.name, f.metadata["choices"])
            if allowed:
                kw["type"] = click.Choice(list(allowed))
            elif base in (int, float, str):
                kw["type"] = base
            kw.update(required=required, default=None if required else default,
                      show_default=not required and default is not None)
        decorators.append(click.option(*names, **kw))
    return lambda fn: functools.reduce(lambda acc, d: d(acc), reversed(decorators), fn)
