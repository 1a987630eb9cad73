"""Process-wide CPU memory setting that makes repeated large forward passes faster (glibc Linux only).

Every LiteFlowNet pass allocates and frees hundreds of MB of activations. glibc serves large blocks with fresh
``mmap`` pages and hands them back on ``free`` (its threshold adapts, but only after such a free), so repeated
passes page-fault and zero that memory again and again: about 250,000 minor faults, a quarter of the time of a
1024x436 pair on a 2-core machine. Fixing the threshold at its 32 MiB maximum and keeping freed heap memory in
the process cuts that to about 29,000 faults (1024x436: 1.15 -> 0.89 s, ``benchmarks/bench_engine.py``). Blocks
above 32 MiB are still mapped and returned, which keeps the peak of 4K frames where it was (a variant that
served everything from the heap ran 4K pairs faster but grew past 8 GB). The price: the process keeps its peak
heap until it exits. The CLI and the trainer turn this on; a library user opts in with :func:`retain_freed_memory`.

:func:`native_bf16` says whether a device computes bfloat16 natively: the trainer's ``precision = "bf16"`` is a
large gain where it does and a large loss where it does not (see there).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

import torch

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


def native_bf16(device: torch.device | str) -> bool:
    """True where ``device`` computes bfloat16 natively: a CUDA device that supports it, or a CPU with AVX512-BF16
    or AMX tiles. Elsewhere oneDNN emulates it: one training step of the full network (batch 8, 192x256) took over
    3 minutes under bf16 autocast on a 2-core AVX2 CPU against 9 s in fp32, while a CPU with AVX512-BF16 ran it 1.9x
    faster than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    checks = [c for c in checks if callable(c)]
    if checks:
        return any(bool(c()) for c in checks)
    return False  # a torch without the probes: assume emulation, the safe side


__all__ = ["native_bf16", "retain_freed_memory"]
