"""``crnn-bench``: run a benchmark suite; compare two reports."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from crnn.paths import refuse_onto
from plumbing.cli import run_cli
from plumbing.errors import UsageError
from plumbing.files import atomic_write, exclusive_lock


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="captcha-crnn")
def cli() -> None:
    """Compare CNN and CRNN captcha readers: accuracy, decoding speed, throughput."""


@cli.command()
@click.option("--suite", default="quick", show_default=True,
              help="quick | standard | full | tiny, or a path to a suite .toml file.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "all"]), default="cpu",
              show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Report folder (default bench-out/SUITE); its cache/ makes reruns resume.")
@click.option("--real", type=click.Path(path_type=Path), default=None,
              help="A folder of real captchas named by label, trained on its 90% split.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None,
              help="Override the suite's seed.")
@click.option("--models", default=None,
              help="Only these of the suite's models, by name or title, comma-separated "
                   "(e.g. crnn-small,cnn-fixed-small).")
@click.option("--seeds", type=click.IntRange(1, 100), default=None,
              help="Train every model with this many seeds (seed, seed + 1, ...) and report "
                   "mean ± std next to the pooled interval (default: the suite's).")
@click.option("--allow-overlap", is_flag=True,
              help="Go on when validation or test images are also training images "
                   "(counted in the report).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def run(suite: str, device: str, out: Path | None, real: Path | None, seed: int | None,
        models: str | None, seeds: int | None, allow_overlap: bool, quiet: bool) -> None:
    """Generate, train, evaluate, measure and write the report (Markdown, HTML, JSON, CSV)."""
    import dataclasses

    from crnn.bench.runner import run_suite
    from crnn.bench.suite import load_suite, select_models

    s = load_suite(suite)
    if seed is not None:
        s = dataclasses.replace(s, seed=seed)
    if models is not None:
        s = select_models(s, [m.strip() for m in models.split(",") if m.strip()])
    if real is not None and not real.is_dir():
        raise UsageError(f"--real folder not found: {real}")
    out = out or Path("bench-out") / s.name
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a report folder")
    if real is not None:
        refuse_onto(out, {"--real": real}, "--out")
    command = "crnn-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with exclusive_lock(out, "report folder"):
        report = run_suite(s, out, device, real, progress=not quiet, command=command,
                           seeds=seeds, allow_overlap=allow_overlap)
    click.echo(f"crnn-bench: report in {report / 'report.md'}")


@cli.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Also write the comparison to this Markdown file.")
def compare(a: Path, b: Path, out: Path | None) -> None:
    """Show reports A and B side by side, as ratios B / A."""
    from crnn.bench.compare import compare_markdown, load_report, report_file

    if out:
        refuse_onto(out, {"A": report_file(a), "B": report_file(b)}, "--out", nested=False)
        if out.is_dir():
            raise UsageError(f"--out {out} is a directory: give a Markdown file name")
    text = compare_markdown(load_report(a), load_report(b), str(a), str(b))
    if out:
        atomic_write(out, text.encode())
    click.echo(text)


@cli.command()
@click.option("--docs", type=click.Path(path_type=Path), default=Path("docs/benchmarks"),
              show_default=True, help="Where the kept reports are.")
@click.option("--write", "readme", type=click.Path(path_type=Path), default=None,
              help="Replace the headline block of this README.")
def headline(docs: Path, readme: Path | None) -> None:
    """Print (or write into the README) the headline figures of the kept reports."""
    from crnn.bench.headline import headline as render
    from crnn.bench.headline import replace_block

    if readme is not None:
        reports = list(docs.rglob("*.json")) + list(docs.rglob("*.md")) if docs.is_dir() else []
        for report in reports:
            refuse_onto(readme, {"report": report}, "--write", nested=False)
    block = render(docs)
    if readme is None:
        click.echo(block)
        return
    atomic_write(readme, replace_block(readme.read_text(), block).encode())
    click.echo(f"crnn-bench: headline of {readme} updated from {docs}")


def main(args: list[str] | None = None) -> None:
    sys.exit(run_cli(cli, "crnn-bench", args))


if __name__ == "__main__":
    main()
