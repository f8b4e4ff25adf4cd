"""``python -m crnn ...`` (and ``torchrun -m crnn train ...``)."""

from crnn.cli import main

main()
