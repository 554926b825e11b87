"""Process-wide runtime settings for CPU inference: glibc's allocator keeps freed memory.

Torch frees and re-allocates tensors of tens of MB at every layer. glibc serves blocks above its
mmap threshold (128 KiB, growing to at most 32 MiB) with fresh mmap()s and hands them back to the
kernel when freed, so every such tensor page-faults its memory in again: on this 2-core CPU a
512x1024 clip spent 114 s of 207 s in the kernel (`time`: sys 1m54s). Raising the threshold and
the trim threshold keeps freed blocks in the heap for the next layer: sys 3 s, 1.65x faster end
to end (drivesim generate, day_cut_in, 90 frames at 512x1024: 2.23 -> 1.35 s/frame). Peak memory
is unchanged (`drivesim bench cascade` reports it); only the return of memory to the system after
a peak is deferred, which a long-running generator does not need.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

ENV_SWITCH = "DRIVESIM_TUNE_MALLOC"  # "0": leave glibc's allocator as it is
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # mallopt parameters (malloc.h)
SETTINGS = {
    M_MMAP_THRESHOLD: 1 << 30,  # blocks below 1 GiB come from the heap, not from mmap()
    M_TRIM_THRESHOLD: 1 << 34,  # never shrink the heap after a free
    M_TOP_PAD: 1 << 26,  # grow it 64 MiB at a time
}
GLIBC_DEFAULTS = {M_MMAP_THRESHOLD: 128 * 1024, M_TRIM_THRESHOLD: 128 * 1024, M_TOP_PAD: 128 * 1024}


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None


def tune_allocator(enable: bool | None = None) -> bool:
    """Apply SETTINGS (enable=True) or glibc's defaults (False; the dynamic mmap threshold is not
    restored); None reads DRIVESIM_TUNE_MALLOC (default on). True if glibc took the settings."""
    if enable is None:
        enable = os.environ.get(ENV_SWITCH, "1") != "0"
    libc = _libc()
    if libc is None:  # musl, macOS, Windows: their allocators are left alone
        return False
    values = SETTINGS if enable else GLIBC_DEFAULTS
    ok = all(libc.mallopt(param, value) == 1 for param, value in values.items())
    if not ok:
        logger.info("glibc's mallopt refused the allocator settings; running with its defaults")
    return ok and enable
