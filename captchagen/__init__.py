"""captchagen: seedable, fast, resumable labelled captcha datasets.

The Python API that the ``captchagen`` command is a thin layer over::

    from captchagen import CaptchaSpec, DatasetJob, render, write_dataset, iter_captchas
    from captchagen import ImageCaptcha  # the captcha library's API, seeded
"""

__version__ = "0.1.0"

from captchagen.charsets import PRESETS, parse_charset
from captchagen.compat import ImageCaptcha
from captchagen.dataset import DatasetJob, merge_shards, write_dataset
from captchagen.manifest import read_dataset
from captchagen.render import check_fit, render, render_with_info
from captchagen.sampling import iter_captchas, label_for, rng_for
from captchagen.shards import ShardPlan, write_shards
from captchagen.spec import NOISE_PRESETS, CaptchaSpec, NoiseSpec

__all__ = [
    "NOISE_PRESETS",
    "PRESETS",
    "CaptchaSpec",
    "DatasetJob",
    "ImageCaptcha",
    "NoiseSpec",
    "ShardPlan",
    "check_fit",
    "iter_captchas",
    "label_for",
    "merge_shards",
    "parse_charset",
    "read_dataset",
    "render",
    "render_with_info",
    "rng_for",
    "write_dataset",
    "write_shards",
]
