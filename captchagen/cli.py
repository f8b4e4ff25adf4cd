"""``captchagen``: a thin click layer over the Python API."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
from pathlib import Path

import click

from captchagen.charsets import PRESETS, parse_charset
from captchagen.dataset import FORMATS, DatasetJob, Run, merge_shards, write_dataset
from captchagen.fonts import select_fonts
from captchagen.manifest import read_dataset
from captchagen.outdir import check_not_an_input
from captchagen.preview import Sheet, contact_sheet, save_image
from captchagen.render import check_fit
from captchagen.sampling import iter_captchas
from captchagen.shards import SHARD_SIZE, ShardPlan, write_shards
from captchagen.spec import (
    MAX_LEN,
    NOISE_PRESETS,
    CaptchaSpec,
    NoiseSpec,
    parse_color,
    parse_length,
)
from captchagen.stats import format_stats, label_stats
from captchagen.style import style_fonts, style_from_options, style_options
from plumbing.cli import run_cli
from plumbing.config import options_from
from plumbing.errors import EnvError, UsageError


def _int_list(value: str, what: str) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[,\s]+", value.strip()) if p]
    if not parts or not all(p.isdecimal() for p in parts):
        raise UsageError(f"{what} {value!r} is not a comma-separated list of whole numbers")
    return tuple(int(p) for p in parts)


def _float_pair(value: str, what: str) -> tuple[float, float]:
    try:
        parts = [float(p) for p in value.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = [0.0, parts[0]]
    if len(parts) != 2:
        raise UsageError(f"{what} {value!r} is not LO,HI")
    return parts[0], parts[1]


NOISE_KNOBS = tuple(f.name for f in dataclasses.fields(NoiseSpec))


def _preset_help(name: str) -> str:
    f = next(f for f in dataclasses.fields(NoiseSpec) if f.name == name)
    return f"{f.metadata['help']} Default: the --noise preset's."


def spec_options(f):
    """The options that describe how a captcha looks, shared by ``make`` and ``preview``.

    The noise knobs come from ``NoiseSpec`` (help and bounds in one place); each is unset
    unless given, so it overrides the ``--noise`` preset only then.
    """
    options = [
        click.option("--len", "length", default="4-6", show_default=True,
                     help=f"Label length N, or A-B for uniform lengths A..B (at most {MAX_LEN})."),
        click.option("--charset", default="alnum", show_default=True,
                     help=f"Preset ({', '.join(PRESETS)}) or literal symbols (chars:XYZ)."),
        click.option("--exclude-confusable", is_flag=True,
                     help="Drop look-alike symbols such as 0/o/O and 1/l/I."),
        click.option("--width", type=int, default=160, show_default=True,
                     help="Image width in px, 16..4096."),
        click.option("--height", type=int, default=60, show_default=True,
                     help="Image height in px, 16..4096."),
        click.option("--fonts", multiple=True, metavar="FILE|DIR|FAMILY",
                     help="Font files, folders of them, installed families (dejavu, stix, cm, "
                          "droid, ...) or 'all' (repeatable). Default: captcha's font."),
        click.option("--font-sizes", default=None,
                     help="Comma-separated sizes in px, 4..1024. Default: scaled to the height."),
        click.option("--noise", type=click.Choice(list(NOISE_PRESETS)), default="default",
                     show_default=True, help="Distortion preset; the options below override it."),
        options_from(NoiseSpec, exclude=("warp", "smooth"),
                     **{k: None for k in NOISE_KNOBS}),
        click.option("--warp", default=None, metavar="LO,HI", help=_preset_help("warp")),
        click.option("--smooth/--no-smooth", default=None, help=_preset_help("smooth")),
        click.option("--background", default="random", show_default=True,
                     help="'random', '#rrggbb' or 'r,g,b'."),
        click.option("--text-color", default="random", show_default=True,
                     help="'random', '#rrggbb' or 'r,g,b'."),
        click.option("--grayscale", is_flag=True, help="Write single-channel images."),
    ]
    return functools.reduce(lambda acc, opt: opt(acc), reversed(options), style_options(f))


def spec_from_options(o: dict) -> CaptchaSpec:
    """Build and check the spec once, here at the edge; everything after trusts it."""
    lo, hi = parse_length(o["length"])
    charset = parse_charset(o["charset"], o["exclude_confusable"])
    noise = NOISE_PRESETS[o["noise"]]
    knobs = {k: o[k] for k in NOISE_KNOBS if o[k] is not None}
    if o["warp"] is not None:
        knobs["warp"] = _float_pair(o["warp"], "--warp")
    noise = dataclasses.replace(noise, **knobs)
    fonts = select_fonts(style_fonts(o), charset)
    spec = CaptchaSpec(
        charset=charset, min_len=lo, max_len=hi, width=o["width"], height=o["height"],
        fonts=tuple(os.path.abspath(f) for f in fonts),
        font_sizes=_int_list(o["font_sizes"], "--font-sizes") if o["font_sizes"] else (),
        noise=noise, background=parse_color(o["background"]),
        text_color=parse_color(o["text_color"]), grayscale=o["grayscale"],
        style=style_from_options(o),
    )
    check_fit(spec)
    return spec


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    m = re.fullmatch(r"(\d+)/(\d+)", value.strip())
    if not m:
        raise UsageError(f"--shard {value!r} is not K/N (e.g. 2/4)")
    return int(m.group(1)), int(m.group(2))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="captcha-crnn")
def cli() -> None:
    """Seedable, fast, resumable labelled captcha datasets."""


@cli.command()
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Output directory (images/, manifest.csv, dataset.json); created with its "
                   "parents if missing.")
@options_from(DatasetJob, choices={"image_format": (*FORMATS, "wds")})
@spec_options
@options_from(Run)
@click.option("--shard-image", type=click.Choice(list(FORMATS)), default="png",
              show_default=True, help="With --format wds: the image format inside the shards.")
@click.option("--shard-size", type=int, default=SHARD_SIZE, show_default=True,
              help="With --format wds: images per tar shard.")
@click.option("--shard", default=None, metavar="K/N", help="Write only part K of N.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def make(out: Path, n: int, seed: int, image_format: str, png_level: int, jpeg_quality: int,
         name_by: str, workers: int | None, resume: bool, overwrite: bool, shard_image: str,
         shard_size: int, shard: str | None, quiet: bool, **spec_opts) -> None:
    """Render a labelled captcha dataset into OUT (image files, or --format wds tar shards)."""
    from tqdm import tqdm

    run = Run(workers=workers, resume=resume, overwrite=overwrite)
    wds = image_format == "wds"
    job = DatasetJob(
        spec=spec_from_options(spec_opts), n=n, seed=seed,
        image_format=shard_image if wds else image_format,
        png_level=png_level, jpeg_quality=jpeg_quality, name_by=name_by, shard=_shard(shard),
    )
    bar: list[tqdm] = []  # created once the output directory has been accepted

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, initial=done, unit="img", disable=quiet, leave=False))
        bar[0].update(done - bar[0].n)

    try:
        write = functools.partial(write_shards, ShardPlan(job, shard_size)) if wds else \
            functools.partial(write_dataset, job)
        s = write(out, workers=run.workers, resume=run.resume, overwrite=run.overwrite,
                  progress=progress)
    finally:
        for b in bar:
            b.close()
    todo = ShardPlan(job, shard_size).images_mine if wds else len(job.index_range)
    rate = s.written / s.seconds if s.seconds > 0 else 0.0
    resumed = f", resumed after {s.resumed_from}" if s.resumed_from else ""
    redrawn = f", {s.redrawn} missing images drawn again" if s.redrawn else ""
    click.echo(f"captchagen: {s.total}/{todo} images in {out} ({s.written} drawn in "
               f"{s.seconds:.1f} s, {rate:.0f} images/s, {s.workers} workers{resumed}{redrawn})")


@cli.command()
@options_from(Sheet)
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("preview.png"),
              show_default=True, help="Image file for the contact sheet (.png, .jpg, .webp).")
@click.option("--from", "source", type=click.Path(path_type=Path), default=None,
              help="Show the first images of an existing dataset instead of drawing new ones.")
@spec_options
def preview(n: int, columns: int | None, seed: int, out: Path, source: Path | None,
            **spec_opts) -> None:
    """Write a labelled contact sheet of N captchas."""
    from PIL import Image

    sheet = Sheet(n=n, columns=columns, seed=seed)
    if source is not None:
        data = read_dataset(source)
        check_not_an_input(out, [source], "dataset")
        items = []
        for row in data.rows[:n]:
            try:
                with Image.open(data.path(row)) as im:
                    items.append((im.convert("RGB"), row["label"]))
            except (OSError, Image.DecompressionBombError) as e:
                raise EnvError(f"cannot read image {data.path(row)}: {e}") from None
    else:
        items = list(iter_captchas(spec_from_options(spec_opts), seed=seed, stop=n))
    save_image(contact_sheet(items, sheet.columns), out)
    click.echo(f"captchagen: wrote a sheet of {len(items)} captchas to {out}")


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats(dataset: Path, as_json: bool) -> None:
    """Length distribution and character frequencies of a dataset."""
    result = label_stats(read_dataset(dataset))
    click.echo(json.dumps(result, indent=2) if as_json else format_stats(result))


@cli.command()
@click.argument("parts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def merge(parts: tuple[Path, ...], out: Path, overwrite: bool, quiet: bool) -> None:
    """Join shard outputs (--shard 1/N .. N/N) into one dataset."""
    from tqdm import tqdm

    # On stderr, and only on a terminal (disable=None), unless --quiet.
    with tqdm(unit="img", desc="merging", leave=False, disable=True if quiet else None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        total = merge_shards(list(parts), out, overwrite=overwrite, progress=progress)
    click.echo(f"captchagen: merged {len(parts)} shards, {total} images, into {out}")


def main(args: list[str] | None = None) -> None:
    sys.exit(run_cli(cli, "captchagen", args))


if __name__ == "__main__":
    main()
