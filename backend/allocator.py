"""Keep freed tensor memory inside the process during a run (glibc's malloc only).

glibc hands every freed block above its mmap threshold (32 MiB at most,
raised dynamically) straight back to the kernel, and the next tensor of that
size is zero-filled by the kernel page by page as it is first touched. A
network on a 542 px tile allocates and frees tensors of 20 to 80 MB at every
layer, so on this project's 2-core EPYC a third of bf16 inference went to page
faults: dganet x4 on a 542^2 tile ran at 1.60 Mpx/s, and at 2.29 with the
heap kept (256^2: 1.80 and 2.30). ``retained_heap`` raises both thresholds
for the length of a run and gives the memory back (``malloc_trim``) when the
last run in the process ends, so QGIS does not keep it.

Elsewhere (macOS, Windows, musl) it does nothing. Where the user has tuned
glibc's malloc through the environment, their settings are left alone.
"""
from __future__ import annotations

import ctypes
import os
import platform
import threading
from contextlib import contextmanager
from typing import Optional

#: ``mallopt`` parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size stay in the heap during a run.
RETAIN_BYTES = 1 << 30
#: glibc's start-up values, restored after the last run. Once set by ``mallopt`` they
#: stay fixed: glibc's raising of them as large blocks are freed is off for the process.
DEFAULT_THRESHOLD = 128 * 1024
#: Environment variables through which a user tunes glibc's malloc.
USER_TUNING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")

_lock = threading.Lock()
_depth = 0


def _glibc() -> Optional[ctypes.CDLL]:
    """The C library when it is glibc with ``mallopt`` and ``malloc_trim``, else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    if any(os.environ.get(name) for name in USER_TUNING):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        return libc
    except (OSError, AttributeError):
        return None


def _enter(libc: ctypes.CDLL) -> None:
    """Count one more run keeping the heap; the first raises glibc's thresholds."""
    global _depth
    with _lock:
        if _depth == 0:
            libc.mallopt(M_MMAP_THRESHOLD, RETAIN_BYTES)
            libc.mallopt(M_TRIM_THRESHOLD, RETAIN_BYTES)
        _depth += 1


@contextmanager
def retained_heap():
    """Within the block, freed memory up to ``RETAIN_BYTES`` per block stays in the heap.

    Nested and concurrent uses (two runs in QGIS at once) share one setting;
    the last to leave restores glibc's defaults and trims the heap.
    """
    global _depth
    libc = _glibc()
    if libc is None:
        yield
        return
    _enter(libc)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_THRESHOLD)
                libc.malloc_trim(0)


def retain_for_process() -> None:
    """Keep the heap for the rest of this process's life (a Dask worker: every tile is a run)."""
    libc = _glibc()
    if libc is not None:
        _enter(libc)
