"""Generator speed, side by side in one run: the tutorial loop vs ``captchagen make``.

(a) one process calling ``ImageCaptcha().write(text, path)`` per image, as tutorials do;
(b) ``captchagen make`` with its default workers. Both 160x60 PNG, 4-6 chars of ``alnum``.
The two run in ``--repeats`` rounds, alternating which goes first, so that other work on the
machine hits both alike; the speed-up is the geometric mean of the rounds' ratios with its 95%
interval. Also the peak memory of ``captchagen make`` at two sizes, to show it stays flat as
``--n`` grows. Writes Markdown and JSON (default ``docs/benchmarks/generator.{md,json}``).

    python benchmarks/generator_speed.py                 # n=50000 for (b), 3000 for (a)
    python benchmarks/generator_speed.py --n 5000 --baseline-n 1000 --repeats 2  # quicker
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crnn.bench.environment import environment
from crnn.bench.stats import ratio_interval
from plumbing.files import atomic_write, write_json

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


def _list(values, spec: str = ".0f") -> str:
    return ", ".join(format(v, spec) for v in values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="images for captchagen make")
    ap.add_argument("--baseline-n", type=int, default=3_000, help="images for the plain loop")
    ap.add_argument("--small-n", type=int, default=5_000, help="smaller run, for peak memory")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of (a) and (b), alternating")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/generator"))
    args = ap.parse_args()
    if min(args.n, args.baseline_n, args.small_n, args.repeats) < 1:
        ap.error("--n, --baseline-n, --small-n and --repeats must be >= 1")

    work = Path(tempfile.mkdtemp(prefix="genbench-"))
    loops, makes = [], []
    try:
        for r in range(args.repeats):
            (work / "loop").mkdir()
            first_loop = r % 2 == 0
            if first_loop:
                loops.append(tutorial_loop(args.baseline_n, work / "loop"))
            makes.append(captchagen_make(args.n, work / "big"))
            if not first_loop:
                loops.append(tutorial_loop(args.baseline_n, work / "loop"))
            shutil.rmtree(work / "loop")
            shutil.rmtree(work / "big")
        small_rate, small_rss = captchagen_make(args.small_n, work / "small")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    loop = statistics.median(loops)
    rate = statistics.median(m[0] for m in makes)
    rss = max(m[1] for m in makes)
    ratios = [m[0] / x for m, x in zip(makes, loops)]
    speedup, low, high = ratio_interval(ratios)
    env = environment()
    result = {
        "command": "python " + " ".join(sys.argv),
        "environment": env,
        "repeats": args.repeats,
        "tutorial_loop": {"images": args.baseline_n, "images_per_s": loop, "rounds": loops},
        "captchagen_make": {"images": args.n, "images_per_s": rate, "peak_rss_mib": rss,
                            "rounds": [m[0] for m in makes]},
        "captchagen_make_small": {"images": args.small_n, "images_per_s": small_rate,
                                  "peak_rss_mib": small_rss},
        "speedup": speedup, "speedup_low": low, "speedup_high": high, "ratios": ratios,
        "peak_rss_growth": rss / small_rss,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out.with_suffix(".json"), result)
    md = f"""# Generator speed

{env['date']} on {env['cpu']} ({env['cpu_cores']} cores), Python {env['python']},
captcha {env['captcha']}, Pillow {env['pillow']}, commit {env['git_commit']}.
Command: `{result['command']}`

160x60 PNG, 4-6 characters of `alnum`, measured side by side in one run: {args.repeats} rounds
of the two, alternating which goes first; images/s are the rounds' medians.

| generator | images | images/s | rounds' images/s | peak RSS (MiB) |
|---|---:|---:|---:|---:|
| tutorial loop: `ImageCaptcha().write(text, path)`, 1 process | {args.baseline_n} | \
{loop:.0f} | {_list(loops)} | |
| `captchagen make`, default workers | {args.small_n} | {small_rate:.0f} | | {small_rss:.0f} |
| `captchagen make`, default workers | {args.n} | {rate:.0f} | \
{_list(m[0] for m in makes)} | {rss:.0f} |

- speed-up of `captchagen make` over the tutorial loop: **{speedup:.2f}x** (geometric mean of
  the rounds' ratios {_list(ratios, ".2f")}; 95% interval {low:.2f}-{high:.2f})
- {args.n} images take {args.n / rate:.0f} s; peak memory at {args.n} vs {args.small_n} images:
  {result['peak_rss_growth']:.2f}x
"""
    atomic_write(args.out.with_suffix(".md"), md.encode())
    print(md)


if __name__ == "__main__":
    main()
