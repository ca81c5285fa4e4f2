"""Freed memory kept for the next training step (glibc's malloc).

A pure training step makes fresh arrays and frees the last step's. glibc's ``malloc`` hands
the free memory at the top of its heap back to the system once it exceeds a *trim threshold*,
and takes blocks above an *mmap threshold* straight from the system. Both start at 128 KiB and
rise only after a large block is freed, to at most 32 MiB and 64 MiB. Until they do, or when a
step's arrays happen to swap places in the heap, every step gives its memory back and faults it
in again on the next: a few thousand page faults a step, which can take a third of a
transformer step or of a 784-512-512-10 step.

:func:`keep_freed` sets the two thresholds, once per process, to the ceiling glibc's own rule
reaches after freeing one 32 MiB block: arrays under 32 MiB come from the heap, and up to
64 MiB of freed heap is kept for reuse. :func:`fnn.step` calls it, so every training loop
does, and so do the workers of a data-parallel step. It changes no value and nothing else. It
does nothing under another C library or when the environment already sets malloc's policy (a
``MALLOC_*_`` variable, or ``glibc.malloc`` tunables in ``GLIBC_TUNABLES``): set
``MALLOC_TRIM_THRESHOLD_=131072`` to keep glibc's defaults.

>>> keep_freed() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import functools
import os

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed"]

#: Arrays below this many bytes come from the heap (glibc's largest dynamic mmap threshold).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap up to this many bytes stays with the process.
TRIM_THRESHOLD = 64 << 20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)


@functools.cache
def keep_freed() -> bool:
    """Set glibc's mmap and trim thresholds for this process, once; whether they were set."""
    try:  # the C library this process runs on (not the one the interpreter was linked against)
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
    except (AttributeError, ValueError, OSError):  # no confstr, or a name this system does not know
        return False
    if any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ) or (
        "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
    ):
        return False  # the user chose a policy
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (AttributeError, OSError):  # an interpreter that does not expose it: nothing to set
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
