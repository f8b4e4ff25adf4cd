"""``crnn``: train, eval, predict, export — a thin click layer over the Python API."""

from __future__ import annotations

import json
import sys

import click

from captchagen.spec import parse_length
from crnn.models import SIZES, model_names
from plumbing.cli import run_cli
from plumbing.errors import UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="captcha-crnn")
def cli() -> None:
    """Train and use CRNN, CNN+CTC and fixed-length CNN captcha readers."""


@cli.command()
@click.option("--model", type=click.Choice(model_names()), default="crnn", show_default=True)
@click.option("--size", type=click.Choice(list(SIZES)), default="small", show_default=True)
@click.option("--data", required=True, help="captchagen dataset or folder of labelled images.")
@click.option("--out", required=True, help="Run directory (checkpoints, metrics.csv, curve).")
@click.option("--val", default=None, help="Validation set (default: --val-split of --data).")
@click.option("--val-split", type=float, default=0.1, show_default=True)
@click.option("--generate", is_flag=True,
              help="Train on fresh images from --data's captchagen spec (validate on --data).")
@click.option("--epochs", type=int, default=None, help="Default 10, unless --minutes.")
@click.option("--minutes", type=float, default=None, help="Wall-clock training budget.")
@click.option("--height", type=int, default=32, show_default=True)
@click.option("--width", type=int, default=128, show_default=True)
@click.option("--max-len", type=int, default=None, help="cnn-fixed heads (default: longest).")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option("--schedule", type=click.Choice(["onecycle", "cosine", "constant"]),
              default="onecycle", show_default=True)
@click.option("--warmup", type=float, default=0.1, show_default=True,
              help="Warm-up, as a fraction of the run.")
@click.option("--grad-clip", type=float, default=5.0, show_default=True)
@click.option("--patience", type=int, default=None,
              help="Stop after this many evaluations without a better validation accuracy.")
@click.option("--eval-every", type=int, default=None, help="Steps between evaluations.")
@click.option("--eval-seconds", type=float, default=60.0, show_default=True,
              help="On a --minutes budget, also evaluate after this much training time.")
@click.option("--epoch-size", type=int, default=20_000, show_default=True,
              help="Images per nominal epoch with --generate.")
@click.option("--augment", type=click.Choice(["auto", "on", "off"]), default="auto",
              show_default=True, help="auto: on for folders of real images, off for generated.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--amp", type=click.Choice(["auto", "on", "off"]), default="auto",
              show_default=True)
@click.option("--channels-last", type=click.Choice(["auto", "on", "off"]), default="auto",
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=None, help="Data processes.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--skip-bad", is_flag=True, help="Leave unreadable images out (and count them).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from last.ckpt.")
@click.option("--overwrite", is_flag=True, help="Start the run in --out afresh.")
@click.option("--init", default=None, metavar="CKPT",
              help="Fine-tune: a new run starting from this checkpoint's weights (the charset "
                   "and, for CTC models, the width may differ).")
@click.option("--freeze-trunk", type=int, default=0, show_default=True, metavar="STEPS",
              help="With --init: keep the conv trunk frozen for this many steps.")
@click.option("--quiet", "-q", is_flag=True)
def train(quiet: bool, **options) -> None:
    """Train a model; writes best.ckpt, last.ckpt, metrics.csv and curve.png to --out."""
    from crnn.train import TrainConfig
    from crnn.train import train as run

    summary = run(TrainConfig(progress=not quiet, **options))
    if summary:
        click.echo(f"crnn: {summary['model']}-{summary['size']} trained {summary['steps']} steps "
                   f"in {summary['train_seconds']:.0f} s; best validation sequence accuracy "
                   f"{summary['best_val_sequence_accuracy']:.4f} ({options['out']}/best.ckpt)")


def _length(value: str | None) -> tuple[int, int] | None:
    return parse_length(value) if value else None


decoding = [
    click.option("--beam", type=int, default=None, help="Beam width (default: greedy)."),
    click.option("--allowed", default=None, help="Only these symbols may be read."),
    click.option("--length", default=None, help="Read texts of length N or A-B only."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto"),
    click.option("--batch-size", type=int, default=256, show_default=True),
    click.option("--skip-bad", is_flag=True, help="Leave unreadable images out."),
]


def with_decoding(f):
    for opt in reversed(decoding):
        f = opt(f)
    return f


@cli.command("eval")
@click.option("--ckpt", required=True)
@click.option("--data", required=True, help="captchagen dataset or folder of labelled images.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--grid", default=None, help="Image file for the worst examples.")
@with_decoding
def eval_cmd(ckpt: str, data: str, as_json: bool, grid: str | None, beam: int | None,
             allowed: str | None, length: str | None, device: str, batch_size: int,
             skip_bad: bool) -> None:
    """Sequence/character accuracy, edit distance, per-length accuracy, confusions."""
    from crnn.evaluate import evaluate_path

    m = evaluate_path(ckpt, data, device, batch_size, beam, skip_bad, allowed, _length(length),
                      grid)
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
@click.option("--ckpt", required=True)
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@with_decoding
def predict(ckpt: str, inputs: tuple[str, ...], as_json: bool, beam: int | None,
            allowed: str | None, length: str | None, device: str, batch_size: int,
            skip_bad: bool) -> None:
    """Read IMAGE|DIR...: text and confidence per image."""
    from crnn.inference import Reader
    from crnn.predict import predict as run

    reader = Reader.from_checkpoint(ckpt, device)
    for r in run(reader, inputs, batch_size, beam, allowed, _length(length), skip_bad):
        click.echo(json.dumps(r) if as_json else f"{r['path']}\t{r['text']}\t{r['confidence']:.4f}")


@cli.command()
@click.option("--ckpt", required=True)
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx",
              show_default=True)
@click.option("--out", "-o", default=None, help="Output file (default: next to the checkpoint).")
def export(ckpt: str, fmt: str, out: str | None) -> None:
    """Export a checkpoint for deployment (dynamic batch; dynamic width for CTC models)."""
    from crnn.export import export as run

    r = run(ckpt, fmt, out)
    click.echo(f"crnn: wrote {r['path']} ({fmt}); largest difference from torch "
               f"{r['max_abs_diff']:.2e}")
    if r["max_abs_diff"] > 1e-3:
        raise UsageError(f"exported model disagrees with torch by {r['max_abs_diff']:.2e}")


def main(args: list[str] | None = None) -> None:
    sys.exit(run_cli(cli, "crnn", args))


if __name__ == "__main__":
    main()
