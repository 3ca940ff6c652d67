"""utils.memory.retain_freed_memory: a buffer freed by a worker thread (as XLA:CPU
frees its per-call temporaries) stays mapped, so the next call does not fault its
pages in again; CCA_JAX_MALLOC=default keeps glibc's behaviour (a fault per page per
call). Each case runs in a fresh process: the setting must precede every thread."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PROBE = r"""
import ctypes, resource, threading
from cca_jax.utils.memory import retain_freed_memory
applied = retain_freed_memory()
import numpy, jax  # what the entry points import next
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, (ctypes.c_void_p,)
faults = []
def calls(n=64 << 20):  # three "calls", each a 64 MiB temporary written and freed
  for _ in range(3):
    f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    p = libc.malloc(n); ctypes.memset(p, 1, n); libc.free(p)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)
t = threading.Thread(target=calls); t.start(); t.join()
print(applied, *faults)
"""


def _probe(**env) -> tuple[bool, list[int]]:
  out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, check=True,
                       capture_output=True, text=True,
                       env={**os.environ, "JAX_PLATFORMS": "cpu", **env}).stdout.split()
  return out[0] == "True", [int(v) for v in out[1:]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_buffers_stay_mapped_across_calls():
  pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
  applied, faults = _probe()
  assert applied
  assert faults[0] >= pages // 2          # the first call maps its pages in
  assert max(faults[1:]) < pages // 100   # later calls reuse them
  applied, faults = _probe(CCA_JAX_MALLOC="default")
  assert not applied
  assert min(faults) >= pages // 2        # glibc's default: every call faults again
