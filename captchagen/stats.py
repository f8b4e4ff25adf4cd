"""Label statistics of a dataset: length distribution and character frequencies."""

from __future__ import annotations

from collections import Counter

from captchagen.manifest import DatasetFiles


def label_stats(data: DatasetFiles) -> dict:
    """Counts and shares; ``expected`` is the share a uniform draw over the charset gives."""
    labels = [r["label"] for r in data.rows]
    lengths = Counter(len(s) for s in labels)
    chars = Counter(c for s in labels for c in s)
    n_chars = sum(chars.values()) or 1
    charset = data.info.get("charset") or "".join(sorted(chars))
    return {
        "images": len(labels),
        "unique_labels": len(set(labels)),
        "lengths": [
            {"length": k, "count": v, "share": v / max(1, len(labels))}
            for k, v in sorted(lengths.items())
        ],
        "chars": [
            {"char": c, "count": chars.get(c, 0), "share": chars.get(c, 0) / n_chars,
             "expected": 1 / len(charset)}
            for c in charset
        ] + [{"char": c, "count": v, "share": v / n_chars, "expected": 0.0}
             for c, v in sorted(chars.items()) if c not in charset],
    }


def format_stats(stats: dict) -> str:
    lines = [f"{stats['images']} images, {stats['unique_labels']} distinct labels", "",
             "length    count   share"]
    lines += [f"{r['length']:>6} {r['count']:>8} {r['share']:>7.2%}" for r in stats["lengths"]]
    lines += ["", "char    count   share  expected"]
    lines += [f"{r['char']!r:>6} {r['count']:>8} {r['share']:>7.2%} {r['expected']:>9.2%}"
              for r in stats["chars"]]
    return "\n".join(lines)
