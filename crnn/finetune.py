"""Fine-tuning: start a new run from another checkpoint's weights (``crnn train --init``).

The charset may differ: the output rows of shared symbols are kept, new symbols start from
the fresh model's rows, dropped ones are removed. CTC models may change their input width
(the convolutions do not depend on it); the kind, size and input height must match.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from torch import Tensor, nn

from crnn.checkpoint import read_checkpoint
from crnn.models import ModelConfig
from plumbing.errors import UsageError


def check_init(path: str, config: ModelConfig) -> dict:
    """Refuse a checkpoint that cannot start ``config``; return what the run records."""
    state = read_checkpoint(path)
    try:
        old = ModelConfig.from_dict(state["model_config"])
    except (TypeError, KeyError, UsageError) as e:
        raise UsageError(f"--init {path}: its model config is unreadable ({e})") from None
    fixed = ["name", "size", "height", "rnn_skip"]
    if not config.head.width_is_free:
        fixed += ["width", "max_len"]  # flattened features and one head per position
    for field in fixed:
        got, want = getattr(old, field), getattr(config, field)
        if got != want:
            raise UsageError(
                f"--init {path} holds a {old.name}-{old.size} model with {field}={got!r}, "
                f"but this run trains {field}={want!r}: fine-tune a model of the same kind "
                f"(--model {old.name} --size {old.size} --height {old.height})")
    kept = [c for c in config.charset if c in old.charset]
    return {"checkpoint": str(Path(path).resolve()),
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            "model": old.to_dict(), "kept_symbols": "".join(kept),
            "new_symbols": "".join(c for c in config.charset if c not in old.charset),
            "dropped_symbols": "".join(c for c in old.charset if c not in config.charset)}


def init_from(model: nn.Module, path: str, config: ModelConfig) -> None:
    """Load the checkpoint's weights into ``model`` (built for ``config``), remapping the
    output rows from the checkpoint's charset to ``config.charset``."""
    state = read_checkpoint(path)
    old_charset = state["model_config"]["charset"]
    weights = dict(state["model"])
    fresh = model.state_dict()
    prefix = config.head.output_layer  # the layer whose rows follow the charset
    for name in (f"{prefix}.weight", f"{prefix}.bias"):
        weights[name] = remap_rows(weights[name], fresh[name], old_charset, config.charset,
                                   blocks=config.head.output_blocks(config))
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise UsageError(f"--init {path} does not fit this model: "
                         f"{str(e).splitlines()[0]}") from None


def remap_rows(old: Tensor, fresh: Tensor, old_charset: str, new_charset: str,
               blocks: int = 1) -> Tensor:
    """Output rows for ``new_charset``: row 0 (blank / no character) and the rows of shared
    symbols from ``old``, the others from ``fresh``. ``blocks`` stacked class blocks (one
    per cnn-fixed head): ``(blocks * (len(charset) + 1), ...)`` in and out."""
    old = old.reshape(blocks, len(old_charset) + 1, *old.shape[1:])
    out = fresh.detach().clone().reshape(blocks, len(new_charset) + 1, *fresh.shape[1:])
    out[:, 0] = old[:, 0]
    for i, c in enumerate(new_charset, start=1):
        j = old_charset.find(c)
        if j >= 0:
            out[:, i] = old[:, j + 1]
    return out.reshape(fresh.shape)


def set_trunk_frozen(model: nn.Module, frozen: bool) -> None:
    """Freeze (or thaw) the convolutional trunk: no gradients, batch-norm statistics fixed."""
    trunk = model.trunk
    for p in trunk.parameters():
        p.requires_grad_(not frozen)
    if frozen:
        trunk.eval()
