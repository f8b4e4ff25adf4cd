"""Named character sets and the parsing of ``--charset`` values."""

from __future__ import annotations

import difflib
import string

from plumbing.errors import UsageError

PRESETS: dict[str, str] = {
    "digits": string.digits,
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
    "alnum": string.digits + string.ascii_lowercase,
    "ALNUM": string.digits + string.ascii_uppercase,
    # The 19 symbols of the Kaggle "captcha_images_v2" set.
    "kaggle19": "2345678bcdefgmnpwxy",
}

# Symbols that captcha fonts, rotation and warping make hard to tell apart. A group is only
# dropped when at least two of its members are in the charset: 'c' alone is not confusable.
CONFUSABLE_GROUPS: tuple[str, ...] = (
    "0oOQD",
    "1lIij",
    "2zZ",
    "5sS",
    "8B",
    "9gq",
    "uvUV",
    "cC",
    "kK",
    "pP",
    "wW",
    "xX",
    "yY",
)

LITERAL_PREFIX = "chars:"


def drop_confusable(charset: str) -> str:
    """Remove every member of each confusable group that has two or more members present."""
    dropped: set[str] = set()
    for group in CONFUSABLE_GROUPS:
        present = [c for c in group if c in charset]
        if len(present) >= 2:
            dropped.update(present)
    return "".join(c for c in charset if c not in dropped)


def check_symbols(symbols: str, what: str = "charset") -> str:
    """Validate a literal set of symbols: non-empty, printable, no spaces, no repeats."""
    if not symbols:
        raise UsageError(f"{what} is empty")
    bad = sorted({c for c in symbols if not c.isprintable() or c.isspace()})
    if bad:
        raise UsageError(f"{what} has unusable symbols (spaces or control characters): {bad!r}")
    repeats = sorted({c for c in symbols if symbols.count(c) > 1})
    if repeats:
        raise UsageError(f"{what} repeats symbols: {''.join(repeats)!r}")
    return symbols


def parse_charset(value: str, exclude_confusable: bool = False) -> str:
    """Resolve a preset name (``alnum``), ``chars:XYZ`` or a literal string of symbols.

    A value that looks like a misspelt preset name (``digit``) is refused rather than taken
    as the literal symbols d, i, g, t: write ``chars:digit`` to mean the literal.
    """
    if value in PRESETS:
        symbols = PRESETS[value]
    elif value.startswith(LITERAL_PREFIX):
        symbols = check_symbols(value[len(LITERAL_PREFIX) :])
    else:
        if not value:
            raise UsageError("charset is empty")
        close = difflib.get_close_matches(value, list(PRESETS), n=1, cutoff=0.7)
        if close:
            raise UsageError(
                f"unknown charset {value!r} (did you mean {close[0]!r}?); "
                f"presets: {', '.join(PRESETS)}; "
                f"for literal symbols write {LITERAL_PREFIX}{value}"
            )
        symbols = check_symbols(value)
    if exclude_confusable:
        symbols = drop_confusable(symbols)
        if not symbols:
            raise UsageError(f"charset {value!r} is empty once confusable symbols are dropped")
    return symbols
