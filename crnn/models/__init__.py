"""Models by name: ``create_model(ModelConfig(name="crnn", charset=..., size="small"))``."""

from crnn.models import cnn_ctc, cnn_fixed, crnn  # noqa: F401  (register the builders)
from crnn.models.config import SIZES, ModelConfig
from crnn.models.heads import CTC, Fixed, Head
from crnn.models.registry import create_model, head_of, model_names

__all__ = ["CTC", "SIZES", "Fixed", "Head", "ModelConfig", "create_model", "head_of", "model_names"]
