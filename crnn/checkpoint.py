"""Checkpoints: written atomically, read with ``weights_only=True`` (no arbitrary unpickling)."""

from __future__ import annotations

import dataclasses
import io
import math
import os
from pathlib import Path

import torch
from torch import nn

from crnn.models import ModelConfig, create_model
from plumbing.errors import EnvError, UsageError

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


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    resumable: bool = False) -> dict:
    """The checkpoint's fields, each checked for type (and the model config for range)
    before anything is built from them; ``resumable``: also the training state.

    A missing file is a usage error; a file that is not a sound crnn checkpoint an
    environment error naming it (exit 1).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as e:  # torch raises several types for foreign or corrupt files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EnvError(f"cannot read checkpoint {path}: {first[:200]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise EnvError(f"{path} is not a crnn checkpoint (no format {FORMAT!r})")
    check_state(state, path, resumable)
    return state


# The fields of a checkpoint and their types: plain Python and tensors, nothing else.
_FIELDS: dict[str, type] = {"model_config": dict, "model": dict, "metrics": dict}
_RESUME_FIELDS: dict[str, type] = {"train_config": dict, "optimizer": dict, "scaler": dict,
                                   "rng": dict, "trainer": dict}


def check_state(state: dict, path: Path, resumable: bool = False) -> None:
    """Refuse, naming ``path``, a checkpoint whose fields are missing or of the wrong type."""

    def bad(what: str) -> EnvError:
        return EnvError(f"checkpoint {path} is malformed: {what}")

    fields = {**_FIELDS, **(_RESUME_FIELDS if resumable else {})}
    for name, kind in fields.items():
        if name not in state:
            raise bad(f"it has no {name!r}" + (" (it cannot be resumed)" if resumable else ""))
        if not isinstance(state[name], kind):
            raise bad(f"{name!r} is {type(state[name]).__name__}, not {kind.__name__}")
    try:
        ModelConfig.from_dict(state["model_config"])
    except UsageError as e:
        raise bad(str(e)) from None
    weights = state["model"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise bad("'model' is not a table of named tensors")
    if resumable:
        _check_resume_state(state, bad)


def _check_resume_state(state: dict, bad) -> None:
    from crnn.train import State  # the trainer's own record of where it stands

    trainer = state["trainer"]
    types = {f.name: f.type for f in dataclasses.fields(State)}
    if set(trainer) != set(types):
        raise bad(f"'trainer' has fields {sorted(map(str, trainer))}, expected {sorted(types)}")
    for k, v in trainer.items():
        ok = (v is None and "None" in types[k]) or (
            isinstance(v, int | float) and not isinstance(v, bool)
            and (isinstance(v, int) or not types[k].startswith("int")))
        if not ok or (isinstance(v, float) and not math.isfinite(v)):
            raise bad(f"'trainer' field {k} is {v!r}")
    if trainer["step"] < 0:
        raise bad(f"'trainer' step is {trainer['step']}")
    opt = state["optimizer"]
    if not (isinstance(opt.get("state"), dict) and isinstance(opt.get("param_groups"), list)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list)
                    for g in opt["param_groups"])):
        raise bad("'optimizer' lacks its state and parameter groups")
    rng = state["rng"]
    if not all(isinstance(rng.get(k), torch.Tensor) and rng[k].dtype == torch.uint8
               for k in ("torch", "augment")):
        raise bad("'rng' lacks the torch and augment generator states")


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
        raise EnvError(f"checkpoint {path} does not fit its model: "
                       f"{str(e).splitlines()[0][:200]}") from None
    return model.to(map_location).eval(), config, state
