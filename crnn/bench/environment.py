"""What a benchmark ran on: machine, library versions, git commit, date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(root: str | Path = ".") -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                             capture_output=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, timeout=10).stdout
        return (out.stdout.strip() or "unknown") + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment(threads: int | None = None) -> dict:
    """A flat description of the machine and software, for the report's environment table."""
    import torch

    from crnn.inference import amp_by_default

    cuda = torch.cuda.is_available()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else "none",
        # What `crnn train --amp auto` does on this CPU (the suites train with auto).
        "cpu_training_autocast": "bfloat16" if amp_by_default(torch.device("cpu"))
        else "float32",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else "n/a",
        "captcha": _version("captcha"),
        "pillow": _version("pillow"),
        "numpy": _version("numpy"),
        "onnxruntime": _version("onnxruntime"),
        "git_commit": git_commit(Path(__file__).resolve().parents[2]),
    }
