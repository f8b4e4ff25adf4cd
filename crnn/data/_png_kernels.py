"""Compiled (numba) PNG unfiltering, grayscale and bilinear resize, exact to Pillow.

:func:`gray_resized` turns the inflated scanlines of an 8-bit gray or RGB PNG into the
pixels ``Image.convert("L").resize((w, h), BILINEAR)`` gives: Pillow's integer RGB -> L
formula (libImaging/Convert.c) and its two-pass fixed-point resampling (libImaging/
Resample.c: horizontal pass into an 8-bit intermediate that holds only the rows the
vertical pass reads, then the vertical pass; a pass is skipped where its size does not
change). The coefficients come from :func:`crnn.data.png.bilinear_coeffs`. Imported lazily
(numba costs ~0.5 s to import) and cached on disk after the first compilation; ``nogil``
so that a thread pool decodes beside the model's forward pass.
"""

from __future__ import annotations

import numba
import numpy as np

PRECISION_BITS = 22  # Resample.c: 32 - 8 - 2


@numba.njit(cache=True, nogil=True, inline="always")
def _paeth(a, b, c):
    """The Paeth predictor in stb_image's branch-free form (selects, no jumps: the textbook
    |p - a|, |p - b|, |p - c| comparisons mispredict on noisy rows). The same value for
    every a, b, c in 0..255 (tested against the textbook form)."""
    thresh = c * 3 - (a + b)
    lo = min(a, b)
    hi = max(a, b)
    t0 = lo if hi <= thresh else c
    return hi if thresh <= lo else t0


@numba.njit(cache=True, nogil=True)
def _paeth3(raw, s, p, stride):
    """Paeth on an RGB row after its first pixel, the left pixel kept in registers (the
    byte-wise loop waits on its own stores)."""
    a0 = np.int32(raw[s])
    a1 = np.int32(raw[s + 1])
    a2 = np.int32(raw[s + 2])
    c0 = np.int32(raw[p])
    c1 = np.int32(raw[p + 1])
    c2 = np.int32(raw[p + 2])
    for i in range(3, stride, 3):
        b0 = np.int32(raw[p + i])
        b1 = np.int32(raw[p + i + 1])
        b2 = np.int32(raw[p + i + 2])
        a0 = (np.int32(raw[s + i]) + _paeth(a0, b0, c0)) & 255
        a1 = (np.int32(raw[s + i + 1]) + _paeth(a1, b1, c1)) & 255
        a2 = (np.int32(raw[s + i + 2]) + _paeth(a2, b2, c2)) & 255
        raw[s + i] = a0
        raw[s + i + 1] = a1
        raw[s + i + 2] = a2
        c0, c1, c2 = b0, b1, b2


@numba.njit(cache=True, nogil=True)
def _unfilter_to_gray(raw, height, width, channels, gray):
    """Undo the PNG filters of ``raw`` (in place) and write each row's gray values.

    Returns 0, or -1 for a filter type other than 0..4 (Pillow refuses those too).
    """
    stride = width * channels
    row = stride + 1
    for y in range(height):
        s = y * row + 1
        p = s - row  # the previous row's first byte (unused on row 0)
        ft = raw[s - 1]
        if y == 0 and ft >= 2:
            # No previous row (zeros): Up is None, Paeth is Sub, Average halves the left.
            if ft == 3:
                for i in range(channels, stride):
                    raw[s + i] = (raw[s + i] + (raw[s + i - channels] >> 1)) & 255
                ft = 0
            elif ft == 2:
                ft = 0
            elif ft == 4:
                ft = 1
        if ft == 1:  # Sub
            for i in range(channels, stride):
                raw[s + i] = (raw[s + i] + raw[s + i - channels]) & 255
        elif ft == 2:  # Up
            for i in range(stride):
                raw[s + i] = (raw[s + i] + raw[p + i]) & 255
        elif ft == 3:  # Average
            for i in range(channels):
                raw[s + i] = (raw[s + i] + (raw[p + i] >> 1)) & 255
            for i in range(channels, stride):
                left = np.int32(raw[s + i - channels])
                up = np.int32(raw[p + i])
                raw[s + i] = (raw[s + i] + ((left + up) >> 1)) & 255
        elif ft == 4:  # Paeth; on the first pixel, left and up-left are 0: the up byte
            for i in range(channels):
                raw[s + i] = (raw[s + i] + raw[p + i]) & 255
            if channels == 3:
                _paeth3(raw, s, p, stride)
            else:
                for i in range(channels, stride):
                    raw[s + i] = (raw[s + i] + _paeth(np.int32(raw[s + i - channels]),
                                                      np.int32(raw[p + i]),
                                                      np.int32(raw[p + i - channels]))) & 255
        elif ft != 0:
            return -1
        if channels == 1:
            for x in range(width):
                gray[y, x] = raw[s + x]
        else:
            for x in range(width):
                q = s + 3 * x
                # Convert.c: L24(rgb) >> 16
                gray[y, x] = (np.int32(raw[q]) * 19595 + np.int32(raw[q + 1]) * 38470
                              + np.int32(raw[q + 2]) * 7471 + 0x8000) >> 16
    return 0


@numba.njit(cache=True, nogil=True)
def _clip8(ss):
    v = ss >> PRECISION_BITS
    if v < 0:
        return 0
    if v > 255:
        return 255
    return v


@numba.njit(cache=True, nogil=True)
def _horizontal(src, offset, bounds, k, dst):
    """Resample.c's ImagingResampleHorizontal_8bpc: ``dst`` row r from ``src`` row
    ``r + offset``."""
    # int32 sums, as Resample.c's: 8-bit samples times weights that add up to 2^22 fit.
    # The rows are transposed first so that the inner loop runs over contiguous values of
    # every row at once (vectorised), not over a few taps per output pixel.
    half = np.int32(1) << (PRECISION_BITS - 1)
    rows, out_w = dst.shape
    columns = np.empty((src.shape[1], rows), np.int32)
    for y in range(rows):
        for x in range(src.shape[1]):
            columns[x, y] = src[y + offset, x]
    acc = np.empty(rows, np.int32)
    for xx in range(out_w):
        xmin = bounds[xx, 0]
        acc[:] = half
        for x in range(bounds[xx, 1]):
            w = k[xx, x]
            for y in range(rows):
                acc[y] += columns[xmin + x, y] * w
        for y in range(rows):
            dst[y, xx] = _clip8(acc[y])


@numba.njit(cache=True, nogil=True)
def _vertical(src, shift, bounds, k, dst):
    """Resample.c's ImagingResampleVertical_8bpc, the bounds shifted up by ``shift``."""
    # Row by row, the taps outermost: the inner loop runs along a row (vectorised).
    half = np.int32(1) << (PRECISION_BITS - 1)
    acc = np.empty(dst.shape[1], np.int32)
    for yy in range(dst.shape[0]):
        ymin = bounds[yy, 0] - shift
        acc[:] = half
        for y in range(bounds[yy, 1]):
            w = k[yy, y]
            for xx in range(dst.shape[1]):
                acc[xx] += np.int32(src[ymin + y, xx]) * w
        for xx in range(dst.shape[1]):
            dst[yy, xx] = _clip8(acc[xx])


@numba.njit(cache=True, nogil=True)
def gray_resized(raw, height, width, channels, hbounds, hk, vbounds, vk, vertical_first,
                 out):
    """Inflated PNG scanlines (``height`` rows of 1 + ``width * channels`` bytes, filters
    undone in place) -> ``out`` (H, W) uint8, the gray image resized as Pillow does.

    ``hbounds``/``hk``, ``vbounds``/``vk``: per output column/row, the first input index and
    the number of taps, and the fixed-point weights. ``vertical_first``: the order of the
    passes (Pillow >= 13 runs the vertical one first when it shrinks the height by more than
    twice what the width loses). A pass whose size does not change is skipped, as in
    Pillow. Returns 0, or -1 on a bad filter type.
    """
    gray = np.empty((height, width), np.uint8)
    if _unfilter_to_gray(raw, height, width, channels, gray) != 0:
        return -1
    out_h, out_w = out.shape
    need_h = out_w != width
    need_v = out_h != height
    if not need_h and not need_v:
        out[:, :] = gray
    elif not need_h:
        _vertical(gray, 0, vbounds, vk, out)
    elif not need_v:
        _horizontal(gray, 0, hbounds, hk, out)
    elif vertical_first:
        tmp = np.empty((out_h, width), np.uint8)
        _vertical(gray, 0, vbounds, vk, tmp)
        _horizontal(tmp, 0, hbounds, hk, out)
    else:
        # Only the rows the vertical pass reads (Resample.c's ybox_first, ybox_last).
        y0 = vbounds[0, 0]
        y1 = vbounds[out_h - 1, 0] + vbounds[out_h - 1, 1]
        tmp = np.empty((y1 - y0, out_w), np.uint8)
        _horizontal(gray, y0, hbounds, hk, tmp)
        _vertical(tmp, y0, vbounds, vk, out)
    return 0
