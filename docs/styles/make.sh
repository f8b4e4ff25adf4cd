#!/bin/sh
# Contact sheets of every captchagen --style preset (run from the repository root):
#   sh docs/styles/make.sh
# One row of four 200x50 captchas per style, reduced to 64 colours to keep the files small.
set -e
for style in $(python -c "from captchagen.style import STYLE_PRESETS; print(*STYLE_PRESETS)"); do
  captchagen preview --style "$style" --n 4 --columns 4 --seed 0 --charset kaggle19 --len 5 \
    --width 200 --height 50 -o "docs/styles/$style.png"
  python -c "import sys; from PIL import Image; p = sys.argv[1]; \
Image.open(p).quantize(64).save(p, optimize=True)" "docs/styles/$style.png"
done
