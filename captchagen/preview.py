"""Contact sheets: a grid of captchas with their labels printed underneath."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from captchagen.outdir import check_parents
from plumbing.config import check_fields, knob
from plumbing.errors import UsageError
from plumbing.files import atomic_write

MAX_SHEET_PIXELS = 64_000_000  # about 200 MB of RGB


@dataclass(frozen=True)
class Sheet:
    """``captchagen preview``'s own options."""

    n: int = knob(16, "Number of captchas on the sheet.", lo=1, hi=1024)
    columns: int | None = knob(None, "Columns. Default: about the square root of N.",
                               lo=1, hi=256)
    seed: int = knob(0, "Seed of the captchas drawn.", lo=0, hi=2**63 - 1)

    def __post_init__(self) -> None:
        check_fields(self)


def contact_sheet(
    items: Sequence[tuple[Image.Image, str]], columns: int | None = None, pad: int = 6
) -> Image.Image:
    """Tile ``(image, caption)`` pairs in a grid, each caption under its image."""
    if not items:
        raise UsageError("nothing to put on a contact sheet")
    columns = columns or math.ceil(math.sqrt(len(items)))
    rows = math.ceil(len(items) / columns)
    tile_w = max(im.width for im, _ in items)
    tile_h = max(im.height for im, _ in items)
    if (columns * (tile_w + pad)) * (rows * (tile_h + pad + 18)) > MAX_SHEET_PIXELS:
        raise UsageError(f"a sheet of {len(items)} images of up to {tile_w}x{tile_h} px is too "
                         "large: use a smaller --n")
    font = ImageFont.load_default(size=14)
    caption_h = 18
    sheet = Image.new(
        "RGB",
        (columns * (tile_w + pad) + pad, rows * (tile_h + caption_h + pad) + pad),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    for k, (im, caption) in enumerate(items):
        x = pad + (k % columns) * (tile_w + pad)
        y = pad + (k // columns) * (tile_h + caption_h + pad)
        sheet.paste(im.convert("RGB"), (x, y))
        draw.text((x, y + tile_h + 2), caption, fill="black", font=font)
    return sheet


def save_image(image: Image.Image, path: str | Path) -> None:
    """Save atomically, in the format the file's suffix names."""
    import io

    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"cannot tell the image format of {path}: use .png, .jpg or .webp")
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    check_parents(path)
    created = [p for p in path.parents if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, buf.getvalue())
    except BaseException:
        for p in created:  # innermost first: the folders made for it, if still empty
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
