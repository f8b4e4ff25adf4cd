"""Looks seen on real captcha schemes, as one frozen dataclass, and the named presets.

Every knob's default is "off", so ``StyleSpec()`` draws exactly today's captcha look (same
random draws, same bytes). ``--style random`` (``randomize``) draws every knob per image from
wide ranges instead (domain randomisation for pretraining); see ``captchagen.effects``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import click

from plumbing.config import check_fields, knob, options_from
from plumbing.errors import UsageError


@dataclass(frozen=True)
class StyleSpec:
    """How a captcha looks beyond the glyph distortions of ``NoiseSpec``."""

    lines: int = knob(0, "Strike-through lines drawn across the text.", lo=0, hi=20)
    line_width: int = knob(2, "Width of the strike-through lines in px.", lo=1, hi=20)
    backdrop: str = knob("plain", "Background: plain (--background colour), grey, or textured "
                         "(grey with a gradient and mottling).",
                         choices=("plain", "grey", "textured"))
    colors: str = knob("color", "Text and background in colour, or in grey levels only.",
                       choices=("color", "grey"))
    spacing: float = knob(0.0, "Per-character spacing jitter, fraction of the glyph width.",
                          lo=0, hi=1)
    baseline: float = knob(0.0, "Per-character baseline jitter, fraction of the text height.",
                           lo=0, hi=0.5)
    hollow: float = knob(0.0, "Chance that a glyph is drawn as an outline (hollow).", lo=0, hi=1)
    ghosts: int = knob(0, "Faint offset copies of the text (a smeared look).", lo=0, hi=8)
    sine: float = knob(0.0, "Sine warp amplitude, fraction of the height.", lo=0, hi=0.25)
    elastic: float = knob(0.0, "Elastic warp amplitude, fraction of the height.", lo=0, hi=0.15)
    speckle: float = knob(0.0, "Fraction of pixels turned into salt-and-pepper dots.",
                          lo=0, hi=0.3)
    binarize: bool = knob(False, "Two-level (1-bit) output.")
    randomize: bool = knob(False, "Draw every knob per image (--style random).", cli=False)

    def __post_init__(self) -> None:
        check_fields(self)


STYLE_PRESETS: dict[str, StyleSpec] = {
    "captcha": StyleSpec(),  # today's look: the captcha package's ImageCaptcha
    "strike": StyleSpec(lines=2, line_width=2, backdrop="grey", colors="grey"),
    "textured": StyleSpec(backdrop="textured", colors="grey", lines=1),
    "ghost": StyleSpec(ghosts=3, lines=1, backdrop="textured", colors="grey"),
    "binary": StyleSpec(binarize=True, speckle=0.02, colors="grey"),
    "speckle": StyleSpec(speckle=0.05, colors="grey", backdrop="grey"),
    "wavy": StyleSpec(sine=0.08, elastic=0.04),
    "hollow": StyleSpec(hollow=1.0, colors="grey"),
    "jitter": StyleSpec(spacing=0.35, baseline=0.2),
    "random": StyleSpec(randomize=True),
}
# A random look draws its font per image too: from every installed font, unless --fonts.
STYLE_FONTS: dict[str, tuple[str, ...]] = {"random": ("all",)}

_KNOBS = tuple(f.name for f in dataclasses.fields(StyleSpec) if f.metadata.get("cli", True))


def style_options(f):
    """``--style`` and one option per knob (each overriding the preset when given)."""
    f = options_from(StyleSpec, **{k: None for k in _KNOBS if k != "binarize"})(f)
    return click.option("--style", "style", type=click.Choice(list(STYLE_PRESETS)),
                        default="captcha", show_default=True,
                        help="Look preset; the style options override it. 'random' draws "
                             "every knob (and the font) per image.")(f)


def style_from_options(o: dict) -> StyleSpec:
    """The preset named by ``o['style']`` with the knobs given on the command line."""
    given = {k: o[k] for k in _KNOBS if o.get(k) not in (None, False)}
    preset = STYLE_PRESETS[o.get("style") or "captcha"]
    if preset.randomize and given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise UsageError(f"--style random draws every knob per image: drop {flags} "
                         "or pick another --style")
    return dataclasses.replace(preset, **given)


def style_fonts(o: dict) -> tuple[str, ...]:
    """The --fonts arguments, or the style's own default (``all`` for random)."""
    return tuple(o.get("fonts") or ()) or STYLE_FONTS.get(o.get("style") or "captcha", ())
