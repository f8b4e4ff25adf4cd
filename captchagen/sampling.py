"""Per-image random streams: image ``i`` of seed ``s`` is the same wherever it is drawn.

Each image gets generators derived from ``(seed, index)`` alone, so the worker count, the
shard, or a resume point cannot change what any image looks like.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from PIL import Image

from captchagen.render import render
from captchagen.spec import CaptchaSpec


def rng_for(seed: int, index: int, stream: str) -> random.Random:
    """An independent generator for one purpose (``label`` or ``image``) of one image."""
    digest = hashlib.blake2b(f"{seed}:{index}:{stream}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "little"))


def sample_label(spec: CaptchaSpec, rng: random.Random) -> str:
    length = rng.randint(spec.min_len, spec.max_len)
    return "".join(spec.charset[rng.randrange(len(spec.charset))] for _ in range(length))


def label_for(spec: CaptchaSpec, seed: int, index: int) -> str:
    return sample_label(spec, rng_for(seed, index, "label"))


def image_for(spec: CaptchaSpec, seed: int, index: int, label: str) -> Image.Image:
    return render(label, spec, rng_for(seed, index, "image"))


def iter_captchas(
    spec: CaptchaSpec, seed: int = 0, start: int = 0, stop: int | None = None
) -> Iterator[tuple[Image.Image, str]]:
    """Yield ``(image, label)`` for indices ``start, start+1, ...`` (endless if ``stop`` is None).

    Image ``i`` equals image ``i`` of a dataset written with the same spec and seed
    (before file encoding), so on-the-fly training sees exactly the data a dataset holds.
    """
    index = start
    while stop is None or index < stop:
        label = label_for(spec, seed, index)
        yield image_for(spec, seed, index, label), label
        index += 1
