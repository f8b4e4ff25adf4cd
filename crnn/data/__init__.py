"""Data for the readers: labelled sources, image decoding and caching, batches, augmentation.

For one's own training loop: ``LabelledImages`` (map-style, any labelled folder or captchagen
dataset), ``GeneratedCaptchas`` (captchas drawn on the fly) and ``ShardStream`` (WebDataset
shards), all ``torch.utils.data`` datasets.
"""

from crnn.data.shards import ShardStream
from crnn.data.torchsets import GeneratedCaptchas, LabelledImages, to_tensor

__all__ = ["GeneratedCaptchas", "LabelledImages", "ShardStream", "to_tensor"]
