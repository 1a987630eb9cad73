"""Process-wide CPU memory setting that makes repeated large forward passes faster (glibc Linux only).

Every LiteFlowNet pass allocates and frees hundreds of MB of activations. glibc serves large blocks with fresh
``mmap`` pages and hands them back on ``free`` (its threshold adapts, but only after such a free), so repeated
passes page-fault and zero that memory again and again: about 250,000 minor faults, a quarter of the time of a
1024x436 pair on a 2-core machine. Fixing the threshold at its 32 MiB maximum and keeping freed heap memory in
the process cuts that to about 29,000 faults (1024x436: 1.15 -> 0.89 s, ``benchmarks/bench_engine.py``). Blocks
above 32 MiB are still mapped and returned, which keeps the peak of 4K frames where it was (a variant that
served everything from the heap ran 4K pairs faster but grew past 8 GB). The price: the process keeps its peak
heap until it exits. The CLI and the trainer turn this on; a library user opts in with :func:`retain_freed_memory`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_done = False


def retain_freed_memory(top_pad_mb: int = 64) -> bool:
    """Serve allocations up to 32 MiB from the heap and keep freed heap memory (glibc ``mallopt``).
    Returns True where it took effect (Linux with glibc), False elsewhere; calling it again is a no-op."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = (mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
          and mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1) == 1
          and mallopt(_M_TOP_PAD, top_pad_mb << 20) == 1)
    _done = ok
    return ok


__all__ = ["retain_freed_memory"]
