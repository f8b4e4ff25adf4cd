"""The on-disk dataset format: ``manifest.csv``, ``dataset.json``, read back safely.

A dataset directory holds ``images/``, ``manifest.csv`` (one row per image, in index order,
``file`` relative to the directory) and ``dataset.json`` (the complete job that made it).
Everything read back is checked: a corrupt ``dataset.json`` or manifest is an environment
error naming the file (exit 1), and a row whose ``file`` is absolute or leads outside the
dataset folder is refused on every read, so no reader opens, copies or deletes a file
outside the dataset it was pointed at.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from plumbing.errors import EnvError, UsageError
from plumbing.files import inside

MANIFEST = "manifest.csv"
INFO = "dataset.json"
IMAGES = "images"
COLUMNS = ("index", "file", "label", "length", "font", "font_sizes")
# Files of a dataset folder besides the images: written (or, for the interop files, maybe
# written) by captchagen, so ``--overwrite`` may remove them from a folder captchagen made.
METADATA = "metadata.csv"  # Hugging Face imagefolder labels (captchagen.exports)
GT = "gt.txt"  # path<TAB>label, for OCR trainers (captchagen.exports)
OWN_FILES = (MANIFEST, INFO, METADATA, GT)
TOOL = "captchagen"


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


def _relative(root: Path, rel: str, where: Path) -> str:
    """The lexical half of ``plumbing.files.inside`` (no file-system calls): a relative
    POSIX path with no ``..``; ``check_files`` resolves symbolic links once per folder."""
    if (not rel or rel[0] == "/" or "\\" in rel or "\x00" in rel or rel[1:2] == ":"
            or ".." in rel.split("/") or rel.strip("/.") == ""):
        raise UsageError(f"{where} lists {rel!r}, which is not a path inside {root}; "
                         "rows must name files relative to the dataset folder")
    return rel


def check_files(root: Path, rels: Iterable[str], where: Path) -> None:
    """Refuse any ``rel`` that does not stay inside ``root``, symbolic links resolved.
    Fast for large manifests: one ``inside`` per folder, and one per file that is itself a
    symbolic link (``where`` is the file that lists them, for the message)."""
    dirs: dict[str, set[str]] = {}
    for rel in rels:
        _relative(root, rel, where)
        parent, _, name = rel.rpartition("/")
        if parent not in dirs:
            links: set[str] = set()
            if parent:
                inside(root, parent)
            if (root / parent).is_dir():
                with os.scandir(root / parent) as it:
                    links = {e.name for e in it if e.is_symlink()}
            dirs[parent] = links
        if name in dirs[parent]:
            inside(root, rel)


def read_rows(path: Path, root: Path | None = None,
              whole_lines: bool = False) -> list[dict[str, str]]:
    """The manifest's rows, each with a ``file`` and a ``label``, files checked to stay
    inside ``root`` (the manifest's folder by default). ``whole_lines`` ignores a last line
    cut off by a kill (``trim_partial_row`` removes it once the rest is known good)."""
    root = path.parent if root is None else root
    data = path.read_bytes()
    if whole_lines:
        data = data[: data.rfind(b"\n") + 1]
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
        if reader.fieldnames is None or not {"file", "label"} <= set(reader.fieldnames):
            raise EnvError(f"{path} is not a dataset manifest (needs the columns "
                           "file,label); regenerate the dataset")
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise EnvError(f"{path} is corrupt ({e}); regenerate the dataset") from None
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise EnvError(f"{path} is corrupt: line {line} does not have "
                           f"{len(reader.fieldnames)} fields; regenerate the dataset")
    check_files(root, (r["file"] for r in rows), path)
    return rows


def read_info(root: Path) -> dict:
    """``dataset.json`` of ``root``: a JSON object, or an ``EnvError`` naming the file."""
    path = root / INFO
    try:
        info = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EnvError(f"{path} is not valid JSON ({e}); restore it or regenerate the "
                       "dataset") from None
    if not isinstance(info, dict):
        raise EnvError(f"{path} is not a JSON object; restore it or regenerate the dataset")
    return info


def made_by_captchagen(root: Path) -> bool:
    """True when ``root`` holds a readable ``dataset.json`` that captchagen wrote."""
    try:
        return read_info(root).get("tool") == TOOL
    except (EnvError, OSError):
        return False


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
        """The row's file; rows from ``read_dataset`` were checked to stay inside ``root``."""
        return self.root / _relative(self.root, row["file"], self.root / MANIFEST)


def read_dataset(root: str | Path) -> DatasetFiles:
    root = Path(root)
    info_path, manifest_path = root / INFO, root / MANIFEST
    if not info_path.is_file() or not manifest_path.is_file():
        raise UsageError(f"{root} is not a captchagen dataset (no {INFO} and {MANIFEST})")
    info = read_info(root)
    if not isinstance(info.get("charset", ""), str):
        raise EnvError(f"{info_path} is corrupt (charset is not text); regenerate the dataset")
    return DatasetFiles(root, info, read_rows(manifest_path, root))
