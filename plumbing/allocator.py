"""glibc malloc settings for a CPU training process: freed activations are reused, not
handed back to the kernel and faulted in again.

A training step allocates and frees the same large tensors every step (crnn-small's first
layer alone: 32 MiB per batch of 64, its gradient, the pool's indices). glibc serves such
sizes with fresh ``mmap`` calls, or trims them off the heap when freed, so every step
page-faults and zeroes them anew. With a high trim threshold and the mmap threshold at its
maximum (32 MiB on 64-bit), the heap keeps them: ``tests/test_allocator.py`` counts a step's
minor faults in fresh processes with and without, and asserts fewer than half. The cost is
that the process keeps its peak memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses more on 64-bit (HEAP_MAX_SIZE / 2)
_TRIM_THRESHOLD = 1 << 30
_TOP_PAD = 64 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Apply the settings once per process; False where the C library is not glibc (or
    refuses a setting), which changes nothing but speed."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl and others lack it
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(p, v) == 1 for p, v in ((_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX),
                                                (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
                                                (_M_TOP_PAD, _TOP_PAD)))
