"""Outputs kept apart from inputs: no command writes over, into or around what it reads."""

from __future__ import annotations

from pathlib import Path

from plumbing.errors import UsageError


def overlaps(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are the same path or one lies inside the other (links
    resolved)."""
    ra, rb = Path(a).resolve(), Path(b).resolve()
    return ra == rb or ra in rb.parents or rb in ra.parents


def refuse_onto(out: str | Path, inputs: dict[str, str | Path | None], option: str,
                nested: bool = True) -> None:
    """Refuse an output ``option`` that is one of ``inputs`` (by option name), or, with
    ``nested``, lies inside one or holds one."""
    for name, path in inputs.items():
        if path is None or str(path) == "":
            continue
        same = Path(out).resolve() == Path(path).resolve()
        if same or (nested and overlaps(out, path)):
            how = "is" if same else "overlaps"
            raise UsageError(f"{option} {out} {how} the input {name} {path}: "
                             "choose an output apart from the inputs")
