"""The on-disk dataset format: ``manifest.csv``, ``dataset.json`` and atomic file writes.

A dataset directory holds ``images/``, ``manifest.csv`` (one row per image, in index order,
``file`` relative to the directory) and ``dataset.json`` (the complete job that made it).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from plumbing.errors import UsageError

MANIFEST = "manifest.csv"
INFO = "dataset.json"
IMAGES = "images"
COLUMNS = ("index", "file", "label", "length", "font", "font_sizes")


def format_rows(rows: list[tuple]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def header_line() -> str:
    return format_rows([COLUMNS])


def trim_partial_row(path: Path) -> None:
    """Drop a last line cut off by a kill, so every remaining row is complete."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with open(path, "r+b") as f:
            f.truncate(end)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"file", "label"} <= set(reader.fieldnames):
            raise UsageError(f"{path} is not a dataset manifest (needs the columns file,label)")
        return list(reader)


@dataclass(frozen=True)
class DatasetFiles:
    """A dataset directory read back: its ``dataset.json`` and the manifest rows."""

    root: Path
    info: dict
    rows: list[dict[str, str]]

    @property
    def charset(self) -> str:
        return self.info["charset"]

    def path(self, row: dict[str, str]) -> Path:
        return self.root / row["file"]


def read_dataset(root: str | Path) -> DatasetFiles:
    root = Path(root)
    info_path, manifest_path = root / INFO, root / MANIFEST
    if not info_path.is_file() or not manifest_path.is_file():
        raise UsageError(f"{root} is not a captchagen dataset (no {INFO} and {MANIFEST})")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as e:
        raise UsageError(f"{info_path} is not valid JSON: {e}") from None
    return DatasetFiles(root, info, read_rows(manifest_path))
