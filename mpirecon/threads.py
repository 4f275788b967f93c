"""Numpy's BLAS threads and torch's threads on the same CPU cores.

A method that alternates numpy work (BLAS) with torch work on the CPU runs two thread pools. OpenBLAS
workers keep spinning for a while after each call, and torch's OpenMP workers do the same, so on a
machine with few cores each pool's next call waits for cores the other one holds. On 2 cores
DERnet's default (the network in torch, then the proximal refinement in numpy) took 66 ms for one
frame, and 18 ms with the refinement's BLAS on one thread (docs/dernet.md, round 3, session 8).
:func:`blas_single_threaded` runs such a numpy part with one BLAS thread; torch keeps its threads.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def blas_single_threaded():
    """A context manager inside which numpy's BLAS (and any other BLAS library loaded when it is
    first used) runs on one thread; the previous thread counts come back on exit. Costs ~15 µs."""
    return _controller().limit(limits=1, user_api="blas")
