"""Generator speed, side by side in one run: the tutorial loop vs ``captchagen make``.

(a) one process calling ``ImageCaptcha().write(text, path)`` per image, as tutorials do;
(b) ``captchagen make`` with its default workers. Both 160x60 PNG, 4-6 chars of ``alnum``.
Also the peak memory of ``captchagen make`` at two sizes, to show it stays flat as ``--n``
grows. Writes Markdown and JSON (default ``docs/benchmarks/generator.{md,json}``).

    python benchmarks/generator_speed.py                 # n=50000 for (b), 3000 for (a)
    python benchmarks/generator_speed.py --n 5000 --baseline-n 1000   # quicker
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crnn.bench.environment import environment

MEASURE_CHILD = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True)\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def tutorial_loop(n: int, out: Path) -> float:
    """Images/s of the plain loop, in this process."""
    from captcha.image import ImageCaptcha

    gen = ImageCaptcha()  # 160x60, the package defaults
    pick = random.Random(0)
    symbols = string.digits + string.ascii_lowercase
    texts = ["".join(pick.choices(symbols, k=pick.randint(4, 6))) for _ in range(n)]
    start = time.perf_counter()
    for i, text in enumerate(texts):
        gen.write(text, str(out / f"{i}.png"))
    return n / (time.perf_counter() - start)


def captchagen_make(n: int, out: Path) -> tuple[float, float]:
    """(images/s, peak RSS in MiB of the largest process) of a whole ``captchagen make`` run."""
    cmd = [sys.executable, "-m", "captchagen", "make", "--n", str(n), "--len", "4-6",
           "--charset", "alnum", "--width", "160", "--height", "60", "--format", "png",
           "--out", str(out), "--quiet"]
    res = subprocess.run([sys.executable, "-c", MEASURE_CHILD, *cmd], check=True,
                         capture_output=True, text=True)
    seconds, max_rss_kib = res.stdout.splitlines()[-1].split()
    return n / float(seconds), int(max_rss_kib) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="images for captchagen make")
    ap.add_argument("--baseline-n", type=int, default=3_000, help="images for the plain loop")
    ap.add_argument("--small-n", type=int, default=5_000, help="smaller run, for peak memory")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/generator"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="genbench-"))
    try:
        (work / "loop").mkdir()
        loop = tutorial_loop(args.baseline_n, work / "loop")
        small_rate, small_rss = captchagen_make(args.small_n, work / "small")
        rate, rss = captchagen_make(args.n, work / "big")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    env = environment()
    result = {
        "command": "python " + " ".join(sys.argv),
        "environment": env,
        "tutorial_loop": {"images": args.baseline_n, "images_per_s": loop},
        "captchagen_make": {"images": args.n, "images_per_s": rate, "peak_rss_mib": rss},
        "captchagen_make_small": {"images": args.small_n, "images_per_s": small_rate,
                                  "peak_rss_mib": small_rss},
        "speedup": rate / loop,
        "peak_rss_growth": rss / small_rss,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = f"""# Generator speed

{env['date']} on {env['cpu']} ({env['cpu_cores']} cores), Python {env['python']},
captcha {env['captcha']}, Pillow {env['pillow']}, commit {env['git_commit']}.
Command: `{result['command']}`

160x60 PNG, 4-6 characters of `alnum`, measured side by side in one run.

| generator | images | images/s | peak RSS (MiB) |
|---|---:|---:|---:|
| tutorial loop: `ImageCaptcha().write(text, path)`, 1 process | {args.baseline_n} | {loop:.0f} | |
| `captchagen make`, default workers | {args.small_n} | {small_rate:.0f} | {small_rss:.0f} |
| `captchagen make`, default workers | {args.n} | {rate:.0f} | {rss:.0f} |

- speed-up of `captchagen make` over the tutorial loop: **{result['speedup']:.2f}x**
- {args.n} images take {args.n / rate:.0f} s; peak memory at {args.n} vs {args.small_n} images:
  {result['peak_rss_growth']:.2f}x
"""
    args.out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
