"""Models by name: ``create_model(ModelConfig(name="crnn", charset=..., size="small"))``."""

from crnn.models import cnn_ctc, cnn_fixed, crnn  # noqa: F401  (register the builders)
from crnn.models.config import CTC_MODELS, SIZES, ModelConfig
from crnn.models.registry import create_model, model_names

__all__ = ["CTC_MODELS", "SIZES", "ModelConfig", "create_model", "model_names"]
