"""Where labelled images come from: a captchagen dataset or a folder named by label."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captchagen.manifest import INFO, MANIFEST, read_dataset
from captchagen.spec import CaptchaSpec
from crnn.data.several import join_samples, split_sources
from plumbing.errors import UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_DUPLICATE = re.compile(r"^(.*)_\d+$")  # 2b827_17.png is a second image of "2b827"


@dataclass(frozen=True)
class Samples:
    """Image paths and their labels; ``charset`` as declared by the source (or '' if none)."""

    paths: tuple[Path, ...]
    labels: tuple[str, ...]
    charset: str = ""
    origin: str = "folder"  # "captchagen" | "folder"
    spec: CaptchaSpec | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: list[int]) -> Samples:
        return Samples(tuple(self.paths[i] for i in indices),
                       tuple(self.labels[i] for i in indices), self.charset, self.origin,
                       self.spec)

    @property
    def max_len(self) -> int:
        return max(map(len, self.labels))


def label_from_name(path: Path) -> str:
    stem = path.stem
    m = _DUPLICATE.match(stem)
    return m.group(1) if m else stem


def read_folder(root: Path) -> Samples:
    """Every image in ``root`` (not recursive), labelled by its file name."""
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"{root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return Samples(tuple(files), tuple(label_from_name(p) for p in files))


def read_captchagen(root: Path) -> Samples:
    data = read_dataset(root)
    if not data.rows:
        raise UsageError(f"{root} is an empty dataset (its manifest has no rows)")
    spec = CaptchaSpec.from_dict(data.info["spec"]) if "spec" in data.info else None
    return Samples(tuple(data.path(r) for r in data.rows), tuple(r["label"] for r in data.rows),
                   data.info.get("charset", ""), "captchagen", spec)


def load_samples(path: str | Path) -> Samples:
    """A captchagen dataset (``manifest.csv`` + ``dataset.json``) or a folder of images;
    several, separated by commas, are joined."""
    parts = split_sources(str(path))
    if len(parts) > 1 and not Path(path).is_dir():
        return join_samples([load_samples(p) for p in parts])
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"data directory not found: {path}")
    if (root / MANIFEST).is_file() and (root / INFO).is_file():
        return read_captchagen(root)
    return read_folder(root)


def split(samples: Samples, fraction: float, seed: int) -> tuple[Samples, Samples]:
    """A seeded shuffle split into (train, held-out) parts.

    The same split as scikit-learn's ``train_test_split(test_size=fraction,
    random_state=seed)`` on the same (sorted) list: with seed 42 and 0.1, the usual
    90/10 split of published captcha notebooks (104 test images of captcha_images_v2).
    """
    return folds(samples, fraction, seed, 1)[0]


def folds(samples: Samples, fraction: float, seed: int, count: int
          ) -> list[tuple[Samples, Samples]]:
    """``count`` (train, held-out) splits whose held-out parts are consecutive slices of the
    same seeded permutation, so no sample is held out twice: fold 0 is
    ``split(samples, fraction, seed)``, and ``ceil(n / held-out size)`` folds partition the
    samples (each part of the split's size, the last one the shorter remainder)."""
    if not 0 < fraction < 1:
        raise UsageError(f"--val-split must be within (0, 1), got {fraction}")
    n = len(samples)
    n_test = math.ceil(n * fraction)
    if n_test >= n:
        raise UsageError(f"cannot split {n} samples into train and validation parts")
    most = math.ceil(n / n_test)
    if not 1 <= count <= most:
        raise UsageError(f"cannot cut {count} disjoint held-out parts of {n_test} from {n} "
                         f"samples: use 1 to {most} folds")
    order = np.random.RandomState(seed).permutation(n).tolist()
    out = []
    for i in range(count):
        start = i * n_test
        held = order[start:start + n_test]
        out.append((samples.subset(order[:start] + order[start + n_test:]),
                    samples.subset(held)))
    return out
