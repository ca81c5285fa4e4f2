"""fnn.heap: after a training step, glibc keeps freed memory for the next step instead of faulting it in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's malloc only")

# A fresh process takes one fnn.step, then makes and frees a 24 MiB array twice, and prints
# whether the policy was set and the page faults the second array cost. glibc's defaults map a
# block that size fresh from the system (its dynamic threshold only rises after the first one is
# freed, and then the heap grows by fresh pages); with fnn's policy the second array reuses the
# first one's pages. NumPy's huge-page advice is off so that one fault is one 4 KiB page.
PROBE = """
import resource
import numpy as np
import fnn
from fnn import heap
np._core.multiarray._set_madvise_hugepage(False)
params = (fnn.Dense(np.ones((2, 1), np.float32), np.zeros(1, np.float32)),)
batch = (np.ones((1, 2), np.float32), np.zeros((1, 1), np.float32))
fnn.step(fnn.init_state(params), batch, fnn.Settings(lr=0.1))
n = 24 << 18  # float32 values in 24 MiB
np.ones(n, np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(n, np.float32)
print(heap.keep_freed(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def probe(**env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    kept, faults = out.stdout.split()
    return kept, int(faults)


def test_a_training_step_keeps_freed_memory_for_reuse():
    kept, faults = probe()
    assert kept == "True"
    assert faults < 100  # 24 MiB is 6,144 pages


def huge_pages_always() -> bool:
    """Whether the kernel backs every large mapping with 2 MiB pages (then a fresh 24 MiB is 12 faults)."""
    try:
        return "[always]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


def test_a_policy_in_the_environment_is_left_alone():
    kept, faults = probe(MALLOC_TRIM_THRESHOLD_="131072")
    assert kept == "False"
    assert faults > (10 if huge_pages_always() else 6000)  # glibc's own policy: every page faulted in again
