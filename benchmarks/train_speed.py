"""Training speed of crnn-small at two commits, side by side: images/s and accuracy per image.

Renders one dataset (or takes ``--data``), then trains crnn-small from scratch on it, with the
same seed and the same number of images, at the old commit (a temporary ``git worktree`` of
``--old``) and at the current working tree. Runs alternate, old/new then new/old, so that
load on the machine hits both sides alike. Each run is a fresh process that imports its own
side's code. Writes OUT.md and OUT.json with the images/s of every run, the new/old ratio
with an interval across repeats, and the validation accuracy each side reached.

    python benchmarks/train_speed.py --out docs/benchmarks/training_speed
    python benchmarks/train_speed.py --train 512 --epochs 1 --repeats 2 --out /tmp/ts  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crnn.bench.stats import ratio_interval  # noqa: E402
from plumbing.files import atomic_write, write_json  # noqa: E402

# Run inside the side's checkout (its code first on sys.path); prints the summary as JSON.
_TRAIN = """
import json, sys, torch
import crnn
from crnn.train import TrainConfig, train
args = json.loads(sys.argv[1])
torch.set_num_threads(args.pop("threads"))
print(json.dumps({"code": crnn.__file__, **train(TrainConfig(**args))}))
"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", default="6cdf601", help="the commit to compare against")
    p.add_argument("--data", help="a captchagen dataset (default: render --train images)")
    p.add_argument("--train", type=int, default=16_000, help="images to render")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="runs per side, alternating")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--new-amp", choices=("auto", "on", "off"), default="auto",
                   help="--amp of the new side only (auto: bf16 autocast on CPUs with native "
                   "bf16, the LSTM in float32); the old side keeps its default (float32)")
    p.add_argument("--out", required=True, help="writes OUT.md and OUT.json")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.epochs < 1 or args.train < 64:
        p.error("--repeats and --epochs must be >= 1, --train >= 64")

    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        work = Path(tmp)
        old_tree = work / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                        str(old_tree), args.old], check=True)
        try:
            # Rendered by the old side's captchagen: the new code reads older datasets,
            # not the other way round.
            data = Path(args.data) if args.data else _render(old_tree, work / "data",
                                                              args.train, args.seed)
            sides = {"old": old_tree, "new": ROOT}
            runs: list[dict] = []
            for r in range(args.repeats):
                for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
                    extra = {"amp": args.new_amp} if side == "new" else {}
                    summary = _train(sides[side], data, work / f"{side}{r}", args, extra)
                    runs.append({"side": side, "repeat": r, **summary})
                    print(f"{side} #{r}: {summary['images_per_s']:.1f} images/s, val acc "
                          f"{summary['best_val_sequence_accuracy']:.4f}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(old_tree)], check=False)
    result = _summarise(runs, args)
    _write(Path(args.out), result, args, argv)


_RENDER = """
import sys
from captchagen import CaptchaSpec, DatasetJob, parse_charset, write_dataset
spec = CaptchaSpec(charset=parse_charset("alnum"), min_len=4, max_len=6)
write_dataset(DatasetJob(spec=spec, n=int(sys.argv[2]), seed=int(sys.argv[3])), sys.argv[1])
"""


def _render(tree: Path, root: Path, n: int, seed: int) -> Path:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-c", _RENDER, str(root), str(n), str(seed)], cwd=tree,
                   env=env, check=True)
    return root


def _train(tree: Path, data: Path, out: Path, args: argparse.Namespace, extra: dict) -> dict:
    cfg = {"data": str(data), "out": str(out), "model": "crnn", "size": "small",
           "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
           "device": "cpu", "workers": 1, "progress": False, "threads": args.threads, **extra}
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", _TRAIN, json.dumps(cfg)], cwd=tree, env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"training at {tree} failed:\n{proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    if not Path(summary["code"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"the run for {tree} imported {summary['code']} instead")
    kept = {k: summary[k] for k in ("images_per_s", "steps", "train_seconds",
                                     "best_val_sequence_accuracy", "data_wait_fraction")}
    # Older code did not record it: it never autocast on the CPU.
    return {**kept, "autocast": summary.get("autocast", "float32")}


def _summarise(runs: list[dict], args: argparse.Namespace) -> dict:
    speed = {s: [r["images_per_s"] for r in runs if r["side"] == s] for s in ("old", "new")}
    acc = {s: [r["best_val_sequence_accuracy"] for r in runs if r["side"] == s]
           for s in ("old", "new")}
    # Ratios within a repeat (the two runs next to each other), then their spread.
    ratios = [n / o for o, n in zip(speed["old"], speed["new"])]
    ratio, low, high = ratio_interval(ratios)
    return {
        "runs": runs, "ratios": ratios, "ratio": ratio, "ratio_low": low, "ratio_high": high,
        "images_per_s": {s: statistics.median(v) for s, v in speed.items()},
        "val_accuracy": {s: statistics.fmean(v) for s, v in acc.items()},
        "images_seen": runs[0]["steps"] * args.batch_size,
    }


def _write(out: Path, result: dict, args: argparse.Namespace, argv: list[str] | None) -> None:
    sys.path.insert(0, str(ROOT))
    from crnn.bench.environment import environment

    env = environment()
    command = "python benchmarks/train_speed.py " + " ".join(argv or sys.argv[1:])
    lines = [
        "# Training speed: crnn-small, old commit vs working tree",
        "",
        f"{env['date']} on {env['cpu']} ({env['cpu_cores']} cores), torch {env['torch']}, "
        f"{args.threads} threads; commit {env['git_commit']} against {args.old}; "
        f"new side --amp {args.new_amp}.",
        f"Command: `{command}`",
        "",
        f"Same data, seed and images ({result['images_seen']:,} = {args.epochs} epochs at "
        f"batch {args.batch_size}) on each side; runs alternate old/new, then new/old. "
        "images/s counts training steps only (evaluation excluded).",
        "",
        "| run | side | autocast | images/s | val sequence accuracy | data wait |",
        "|---|---|---|---:|---:|---:|",
    ]
    lines += [f"| {r['repeat']} | {r['side']} | {r['autocast']} | {r['images_per_s']:.1f} | "
              f"{r['best_val_sequence_accuracy']:.4f} | {r['data_wait_fraction']:.3f} |"
              for r in result["runs"]]
    lines += [
        "",
        f"- images/s, median: old {result['images_per_s']['old']:.1f}, "
        f"new {result['images_per_s']['new']:.1f}",
        f"- new / old: **{result['ratio']:.2f}x** (geometric mean of the per-repeat ratios "
        f"{', '.join(f'{x:.2f}' for x in result['ratios'])}; 95% t interval: "
        f"{result['ratio_low']:.2f}-{result['ratio_high']:.2f})",
        f"- validation sequence accuracy after {result['images_seen']:,} images: old "
        f"{result['val_accuracy']['old']:.4f}, new {result['val_accuracy']['new']:.4f}",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    write_json(out.with_suffix(".json"), {"command": command, "environment": env, **result})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
