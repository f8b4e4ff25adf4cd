"""``crnn``: train, eval, predict, export — a thin click layer over the Python API."""

from __future__ import annotations

import json
import sys

import click

from crnn.models import ModelConfig
from crnn.options import DecodeOptions, ExportOptions
from crnn.paths import refuse_onto
from crnn.train import TrainConfig
from plumbing.cli import run_cli
from plumbing.config import options_from
from plumbing.errors import UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="captcha-crnn")
def cli() -> None:
    """Train and use CRNN, CNN+CTC and fixed-length CNN captcha readers."""


@cli.command()
@options_from(TrainConfig)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(quiet: bool, **options) -> None:
    """Train a model; writes best.ckpt, last.ckpt, metrics.csv and curve.png to --out."""
    from crnn.train import train as run

    summary = run(TrainConfig(progress=not quiet, **options))
    if summary:
        click.echo(f"crnn: {summary['model']}-{summary['size']} trained {summary['steps']} steps "
                   f"in {summary['train_seconds']:.0f} s; best validation sequence accuracy "
                   f"{summary['best_val_sequence_accuracy']:.4f} ({options['out']}/best.ckpt)")


def _model_config(ckpt: str, opts: DecodeOptions) -> ModelConfig:
    """The checkpoint's model config, with the decoding options checked against it."""
    from crnn.checkpoint import read_checkpoint

    config = ModelConfig.from_dict(read_checkpoint(ckpt)["model_config"])
    opts.check_model(config, ckpt)
    return config


@cli.command("eval")
@click.option("--ckpt", required=True, help="Checkpoint to evaluate.")
@click.option("--data", required=True, help="captchagen dataset or folder of labelled images.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--grid", default=None, help="Image file for the worst examples.")
@click.option("--allow-overlap", is_flag=True,
              help="Evaluate although some images are the checkpoint's training images.")
@options_from(DecodeOptions)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def eval_cmd(ckpt: str, data: str, as_json: bool, grid: str | None, allow_overlap: bool,
             quiet: bool, **options) -> None:
    """Sequence/character accuracy, edit distance, per-length accuracy, confusions."""
    from crnn.evaluate import evaluate_path

    opts = DecodeOptions(**options)
    if grid is not None:
        refuse_onto(grid, {"--ckpt": ckpt, "--data": data}, "--grid")
    _model_config(ckpt, opts)
    m = evaluate_path(ckpt, data, opts.device, opts.batch_size, opts.beam, opts.skip_bad,
                      opts.allowed, opts.length_range, grid, allow_overlap,
                      progress=not quiet)
    if m.get("train_overlap"):
        click.echo(f"warning: {m['train_overlap']} images are training images "
                   "(--allow-overlap): the accuracy is inflated", err=True)
    if as_json:
        click.echo(json.dumps(m))
        return
    click.echo(f"{m['n']} images: sequence accuracy {m['sequence_accuracy']:.4f}, "
               f"character accuracy {m['char_accuracy']:.4f}, NED {m['ned']:.4f}")
    click.echo("by length: " + ", ".join(f"{k}: {v['sequence_accuracy']:.4f} (n={v['n']})"
                                         for k, v in m["by_length"].items()))
    if m["confusions"]:
        click.echo("most confused (true -> read): " + ", ".join(
            f"{c['true']}->{c['predicted']} x{c['count']}" for c in m["confusions"]))
    if "worst_grid" in m:
        click.echo(f"worst examples: {m['worst_grid']}")


@cli.command()
@click.option("--ckpt", required=True, help="Checkpoint to read with.")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@options_from(DecodeOptions)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def predict(ckpt: str, inputs: tuple[str, ...], as_json: bool, quiet: bool, **options) -> None:
    """Read IMAGE|DIR...: text and confidence per image. ``-`` reads one image's bytes
    (PNG, JPEG, ...) from stdin: ``crnn predict --ckpt m.ckpt - < captcha.png``."""
    from crnn.inference import Reader
    from crnn.predict import image_paths, predict_bytes
    from crnn.predict import predict as run

    opts = DecodeOptions(**options)
    if "-" in inputs and len(inputs) > 1:
        raise UsageError("'-' (one image from stdin) cannot be mixed with other inputs")
    if inputs != ("-",):
        image_paths(inputs)  # refuse missing inputs before the model is built
    _model_config(ckpt, opts)
    reader = Reader.from_checkpoint(ckpt, opts.device)
    if inputs == ("-",):
        rows = [predict_bytes(reader, click.get_binary_stream("stdin").read(), opts.beam,
                              opts.allowed, opts.length_range)]
    else:
        rows = run(reader, inputs, opts.batch_size, opts.beam, opts.allowed, opts.length_range,
                   opts.skip_bad, progress=not quiet)
    for r in rows:
        click.echo(json.dumps(r) if as_json else f"{r['path']}\t{r['text']}\t{r['confidence']:.4f}")


@cli.command()
@click.option("--ckpt", required=True, help="Checkpoint to export.")
@options_from(ExportOptions)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def export(ckpt: str, quiet: bool, **options) -> None:
    """Export a checkpoint for deployment (dynamic batch; dynamic width for CTC models)."""
    from crnn.export import export as run

    opts = ExportOptions(**options)
    r = run(ckpt, opts.fmt, opts.out, ddddocr_height=opts.ddddocr_height, progress=not quiet)
    extra = f" and {r['charsets']}" if "charsets" in r else ""
    click.echo(f"crnn: wrote {r['path']}{extra} ({opts.fmt}); largest difference from torch "
               f"{r['max_abs_diff']:.2e}")
    if r["max_abs_diff"] > 1e-3:
        raise UsageError(f"exported model disagrees with torch by {r['max_abs_diff']:.2e}")


def main(args: list[str] | None = None) -> None:
    sys.exit(run_cli(cli, "crnn", args))


if __name__ == "__main__":
    main()
