"""Checkpoints: written atomically, read with ``weights_only=True`` (no arbitrary unpickling)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch import nn

from crnn.models import ModelConfig, create_model
from plumbing.errors import UsageError

FORMAT = "crnn-checkpoint/1"


def save_checkpoint(path: Path, model: nn.Module, config: ModelConfig, metrics: dict,
                    **training_state) -> None:
    """Weights + model config (charset included) + metrics, and any resumable state.

    Written to a temporary file and renamed, so a kill never leaves a half checkpoint.
    """
    state = {
        "format": FORMAT,
        "model_config": config.to_dict(),
        "model": model.state_dict(),
        "metrics": metrics,
        **training_state,
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    tmp = path.with_name(f".{path.name}.tmp")
    # No fsync: the rename is what makes a kill safe, and fsync costs seconds on some disks.
    tmp.write_bytes(buf.getbuffer())
    os.replace(tmp, path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for foreign or corrupt files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"{path} is not a crnn checkpoint")
    return state


def load_model(path: str | Path, map_location: str | torch.device = "cpu",
               expect: ModelConfig | None = None) -> tuple[nn.Module, ModelConfig, dict]:
    """Rebuild the model of a checkpoint; with ``expect``, refuse one of another kind."""
    state = read_checkpoint(path, map_location)
    config = ModelConfig.from_dict(state["model_config"])
    if expect is not None:
        for field in ("name", "size", "charset", "height", "width", "max_len"):
            got, want = getattr(config, field), getattr(expect, field)
            if got != want:
                raise UsageError(f"checkpoint {path} has {field}={got!r}, expected {want!r}")
    model = create_model(config)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise UsageError(f"checkpoint {path} does not fit its model: "
                         f"{str(e).splitlines()[0]}") from None
    return model.to(map_location).eval(), config, state
