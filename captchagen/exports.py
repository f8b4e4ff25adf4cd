"""Label files other tools read, written next to ``manifest.csv``.

* ``metadata.csv`` (``file_name,text``): Hugging Face ``datasets``' ``imagefolder`` loader
  attaches each row's ``text`` to the image named by ``file_name``, so
  ``load_dataset("imagefolder", data_dir=OUT)`` gives images with their labels.
* ``gt.txt`` (``images/000001.png<TAB>label`` per line): the ground-truth list of
  deep-text-recognition-benchmark's ``create_lmdb_dataset.py``, PaddleOCR's and EasyOCR's
  recognition trainers.

Both are derived from the manifest and written atomically once the dataset is complete, so
they never list an image that is not on disk and never miss one.
"""

from __future__ import annotations

import csv
from pathlib import Path

from captchagen.manifest import GT, MANIFEST, METADATA
from plumbing.files import atomic_text

EXPORTS = (METADATA, GT)


def write_label_files(root: str | Path) -> None:
    """(Re)write ``metadata.csv`` and ``gt.txt`` of the dataset in ``root`` from its manifest,
    row by row: memory stays flat however many images the dataset holds. (No path is opened
    through these rows, so they need no inside-the-root check here.)"""
    root = Path(root)
    with (open(root / MANIFEST, newline="", encoding="utf-8") as f,
          atomic_text(root / METADATA) as meta, atomic_text(root / GT) as gt):
        rows = csv.DictReader(f)
        meta_csv = csv.writer(meta, lineterminator="\n")
        meta_csv.writerow(("file_name", "text"))
        for r in rows:
            meta_csv.writerow((r["file"], r["label"]))
            gt.write(f"{r['file']}\t{r['label']}\n")


def sync_label_files(root: str | Path, complete: bool) -> None:
    """Write the label files of a complete dataset; an incomplete one has none (stale ones
    from an earlier run are removed) until a resumed run completes it."""
    if complete:
        write_label_files(root)
        return
    for name in EXPORTS:
        (Path(root) / name).unlink(missing_ok=True)


def read_gt(path: str | Path) -> list[tuple[str, str]]:
    """``gt.txt`` back as ``(file, label)`` pairs (labels may hold spaces, never tabs)."""
    pairs = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        file, _, label = line.partition("\t")
        pairs.append((file, label))
    return pairs
