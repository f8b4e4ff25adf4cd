"""CTC decoding of ``(T, N, C)`` log-probabilities (``CTCLoss``'s layout, blank = 0).

- :func:`greedy` / :func:`greedy_decode`: best path, fully batched, CPU or CUDA.
- :func:`beam` / :func:`beam_decode`: prefix beam search, batched over rows and beams.
- :func:`reference`: the per-frame Python loop, the oracle and the benchmark's baseline.

All take ``charset``, the symbols of classes 1..C-1, and return one string per row; the
``*_decode`` variants also return scores. Both decoders can be constrained to a subset of
the symbols (``allowed``) and to a text length (``length_range``).
"""

from crnn.decode._beam import beam, beam_decode
from crnn.decode._common import Decoded
from crnn.decode._greedy import greedy, greedy_decode
from crnn.decode._reference import reference

__all__ = ["Decoded", "beam", "beam_decode", "greedy", "greedy_decode", "reference"]
