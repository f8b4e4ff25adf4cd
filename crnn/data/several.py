"""Several datasets at once: ``--data a,b,c`` (commas inside ``{..}`` belong to patterns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plumbing.errors import UsageError

if TYPE_CHECKING:
    from crnn.data.sources import Samples


def split_sources(data: str) -> list[str]:
    """``'a,b/{0..3}.tar,c'`` -> ``['a', 'b/{0..3}.tar', 'c']``."""
    parts, depth, cur = [], 0, ""
    for ch in data:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def source_root(source: str) -> str:
    """The folder a source reads from: the path itself, or a pattern's fixed leading part
    (``data/wds/shard-{0..9}.tar`` -> ``data/wds``)."""
    cut = min((i for i, ch in enumerate(source) if ch in "{*?["), default=None)
    if cut is None:
        return source
    head = source[:cut]
    return head.rsplit("/", 1)[0] if "/" in head else "."


def merged_charset(charsets: list[str]) -> str:
    """The union of declared charsets, in first-seen order; '' if any declares none."""
    if not all(charsets):
        return ""
    return "".join(dict.fromkeys("".join(charsets)))


def join_samples(parts: list[Samples]) -> Samples:
    """One training set from several sources (their images in the order given)."""
    first = parts[0]
    specs = {p.spec for p in parts}
    if len({p.origin for p in parts}) > 1:
        raise UsageError("--data mixes captchagen datasets and plain folders: their labels "
                         "and augmentation defaults differ; train on one kind at a time")
    return type(first)(
        tuple(x for p in parts for x in p.paths), tuple(x for p in parts for x in p.labels),
        merged_charset([p.charset for p in parts]), first.origin,
        first.spec if len(specs) == 1 else None)
