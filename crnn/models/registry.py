"""A small registry of model builders by name, in the style of timm's ``create_model``; each
entry also names the model's head (its loss, decoding and capacity: ``crnn.models.heads``)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from crnn.models.config import ModelConfig
from crnn.models.heads import Head
from plumbing.errors import UsageError

_BUILDERS: dict[str, Callable[[ModelConfig], nn.Module]] = {}
_HEADS: dict[str, Head] = {}


def register(name: str, head: Head) -> Callable:
    def add(builder: Callable[[ModelConfig], nn.Module]) -> Callable[[ModelConfig], nn.Module]:
        _BUILDERS[name] = builder
        _HEADS[name] = head
        return builder

    return add


def head_of(name: str) -> Head:
    """The head of the model registered as ``name``."""
    if name not in _HEADS:
        raise UsageError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    return _HEADS[name]


def model_names() -> list[str]:
    return sorted(_BUILDERS)


def create_model(config: ModelConfig) -> nn.Module:
    """Build the model that ``config`` names (weights freshly initialised)."""
    if config.name not in _BUILDERS:
        raise UsageError(f"unknown model {config.name!r}; choose from {', '.join(model_names())}")
    return _BUILDERS[config.name](config)
