"""The words the transfer table is keyed by, in a module light enough for ``headline`` to
import without pulling in torch and the training code."""

REST = "the rest"  # the test part of a K: every real image not trained on
PRETRAINED = "pretrained + fine-tuned"
SCRATCH = "from scratch"


def folds_label(folds: int) -> str:
    """The test part of the K measured in ``folds`` folds, pooled."""
    return f"{folds} folds"
