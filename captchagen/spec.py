"""What a captcha looks like: frozen, validated dataclasses and the noise presets."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from captchagen.charsets import check_symbols
from captchagen.style import StyleSpec
from plumbing.config import check_fields, knob
from plumbing.errors import UsageError

Color = tuple[int, int, int]
MAX_LEN = 256  # symbols per label


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


@dataclass(frozen=True)
class NoiseSpec:
    """The distortions applied to a captcha; ``NOISE_PRESETS`` names the usual mixes."""

    dots: int = knob(30, "Number of noise dots, drawn in the text colour.", lo=0, hi=10_000)
    dot_width: int = knob(3, "Noise dot size in px.", lo=1, hi=64)
    curves: int = knob(1, "Number of noise arcs across the text.", lo=0, hi=100)
    rotation: float = knob(30.0, "Max glyph rotation (degrees, each way).", lo=0, hi=90)
    warp: tuple[float, float] = knob((0.1, 0.3), "Glyph warp LO,HI: corners move by this "
                                     "fraction of the glyph size (0 <= LO <= HI <= 0.5).",
                                     metavar="LO,HI")
    overlap: float = knob(0.25, "Max overlap of neighbours, fraction of the mean glyph width.",
                          lo=0, hi=0.5)
    smooth: bool = knob(True, "captcha's SMOOTH filter.")
    blur: float = knob(0.0, "Gaussian blur radius in px, after smoothing.", lo=0, hi=10)

    def __post_init__(self) -> None:
        check_fields(self)
        ok = len(self.warp) == 2 and all(isinstance(v, int | float) for v in self.warp)
        _require(ok and 0 <= self.warp[0] <= self.warp[1] <= 0.5,
                 "warp must be 'LO,HI' with 0 <= LO <= HI <= 0.5")


NOISE_PRESETS: dict[str, NoiseSpec] = {
    "none": NoiseSpec(dots=0, curves=0, rotation=0, warp=(0, 0), overlap=0, smooth=False),
    "light": NoiseSpec(dots=10, curves=1, rotation=15, warp=(0.05, 0.15), overlap=0.15),
    # The look of captcha 0.7.1's ImageCaptcha defaults.
    "default": NoiseSpec(),
    "heavy": NoiseSpec(dots=80, curves=3, rotation=40, warp=(0.2, 0.4), overlap=0.35, blur=0.8),
}


@dataclass(frozen=True)
class CaptchaSpec:
    """Everything that decides how one captcha is drawn (not how many, nor the file format).

    ``fonts`` empty means the DroidSansMono font shipped with ``captcha``; ``font_sizes``
    empty means sizes scaled to the height as captcha's (42, 50, 56) are to 60 px.
    ``background``/``text_color`` ``None`` means a random colour per image.
    """

    charset: str
    min_len: int = 4
    max_len: int = 6
    width: int = 160
    height: int = 60
    fonts: tuple[str, ...] = ()
    font_sizes: tuple[int, ...] = ()
    noise: NoiseSpec = field(default_factory=NoiseSpec)
    background: Color | None = None
    text_color: Color | None = None
    grayscale: bool = False
    style: StyleSpec = field(default_factory=StyleSpec)  # looks beyond the noise (style.py)

    def __post_init__(self) -> None:
        check_symbols(self.charset)
        _require(self.min_len >= 1, f"length must be >= 1, got {self.min_len}")
        _require(
            self.min_len <= self.max_len,
            f"length range {self.min_len}-{self.max_len} is empty (the first must be <= the last)",
        )
        _require(16 <= self.width <= 4096 and 16 <= self.height <= 4096,
                 f"image size {self.width}x{self.height} is outside 16..4096 pixels")
        if not self.font_sizes:
            object.__setattr__(self, "font_sizes", default_font_sizes(self.height))
        _require(all(4 <= s <= 1024 for s in self.font_sizes), "font sizes must be within 4..1024")
        object.__setattr__(self, "font_sizes", tuple(sorted(set(self.font_sizes))))
        for c in (self.background, self.text_color):
            _require(c is None or (len(c) == 3 and all(0 <= v <= 255 for v in c)),
                     "colours are three values within 0..255")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CaptchaSpec:
        d = dict(d)
        d["noise"] = NoiseSpec(**{**d["noise"], "warp": tuple(d["noise"]["warp"])})
        d["style"] = StyleSpec(**d.get("style", {}))  # absent in datasets made before styles
        for k in ("fonts", "font_sizes"):
            d[k] = tuple(d[k])
        for k in ("background", "text_color"):
            d[k] = tuple(d[k]) if d[k] is not None else None
        return cls(**d)


def default_font_sizes(height: int) -> tuple[int, ...]:
    return tuple(max(4, round(height * f)) for f in (0.70, 0.83, 0.93))


def parse_length(value: str) -> tuple[int, int]:
    """``'5'`` -> (5, 5); ``'4-6'`` -> (4, 6)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", value)
    if not m:
        raise UsageError(f"length {value!r} is not N or A-B (e.g. 5 or 4-6)")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if lo < 1:
        raise UsageError(f"length must be >= 1, got {value!r}")
    if lo > hi:
        raise UsageError(f"length range {value!r} is empty (the first must be <= the last)")
    if hi > MAX_LEN:
        raise UsageError(f"length {value!r} is too long: at most {MAX_LEN} symbols")
    return lo, hi


def parse_color(value: str) -> Color | None:
    """``random``, ``#rrggbb`` or ``r,g,b``."""
    v = value.strip().lower()
    if v == "random":
        return None
    if re.fullmatch(r"#[0-9a-f]{6}", v):
        return tuple(int(v[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    parts = v.split(",")
    if len(parts) == 3 and all(p.strip().isdecimal() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)  # type: ignore[return-value]
    raise UsageError(f"colour {value!r} is not 'random', '#rrggbb' or 'r,g,b'")
