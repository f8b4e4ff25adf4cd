"""plumbing.allocator: a CPU training step stops page-faulting its activations anew."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Minor page faults over 4 crnn-small training steps at batch 64, after 2 warm-up steps.
_STEPS = """
import resource, sys, torch
from torch import nn
from crnn.models import ModelConfig, create_model
from plumbing.allocator import keep_freed_memory
assert sys.argv[1] == "off" or keep_freed_memory()
torch.manual_seed(0)
torch.set_num_threads(1)
m = create_model(ModelConfig(name="crnn", charset="0123456789", size="small")).train()
x = torch.randn(64, 1, 32, 128)
targets, frames, lengths = torch.randint(1, 11, (320,)), torch.full((64,), 32), torch.full((64,), 5)
opt = torch.optim.AdamW(m.parameters())
def step():
    loss = nn.functional.ctc_loss(m(x), targets, frames, lengths)
    opt.zero_grad(); loss.backward(); opt.step()
step(); step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(setting: str) -> int:
    out = subprocess.run([sys.executable, "-c", _STEPS, setting], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_training_steps_reuse_their_memory():
    from plumbing.allocator import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("not glibc")
    # Medians of three fresh processes each: one process's count varies with what else the
    # machine does (seen here: 100k-225k faults without the setting, 3k-14k with it).
    off = sorted(_faults("off") for _ in range(3))[1]
    on = sorted(_faults("on") for _ in range(3))[1]
    assert on < 0.5 * off, (on, off)
