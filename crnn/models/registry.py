"""A small registry of model builders by name, in the style of timm's ``create_model``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from crnn.models.config import ModelConfig
from plumbing.errors import UsageError

_BUILDERS: dict[str, Callable[[ModelConfig], nn.Module]] = {}


def register(name: str) -> Callable:
    def add(builder: Callable[[ModelConfig], nn.Module]) -> Callable[[ModelConfig], nn.Module]:
        _BUILDERS[name] = builder
        return builder

    return add


def model_names() -> list[str]:
    return sorted(_BUILDERS)


def create_model(config: ModelConfig) -> nn.Module:
    """Build the model that ``config`` names (weights freshly initialised)."""
    if config.name not in _BUILDERS:
        raise UsageError(f"unknown model {config.name!r}; choose from {', '.join(model_names())}")
    return _BUILDERS[config.name](config)
