"""Elman: sequence modeling with recurrent neural networks on PyTorch.

Importing elman changes nothing process-wide (no environment variable, no matplotlib backend).
"""

import os

__version__ = "0.1.0"

HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"


def use_huge_pages() -> None:
    """Ask torch's CPU allocator to back tensors of 2 MiB and more with transparent huge pages.

    Call it before torch allocates its first CPU tensor (safest: before ``import torch``):
    torch reads the variable once, at that allocation, and keeps the answer for the process.
    Importing elman allocates no tensor, so calling it right after ``import elman`` works too.
    The ``elman`` command calls it. It sets ``THP_MEM_ALLOC_ENABLE=1`` unless the variable is
    already set (``THP_MEM_ALLOC_ENABLE=0`` keeps torch's default).

    Why: a layer's fresh (T, B, 4H) buffers otherwise take one page fault per 4 KiB. On the
    2-core machine a new 32 MiB tensor took 12.6 ms to fill, 3.2 ms with huge pages, 1.3 ms
    when reused. A training step of a character model (embedding 64, 2-layer LSTM of 256,
    B=32, T=128, Adam, 1 thread) took 398 ms of CPU time without them and 352 ms with them:
    1.15x in the median of 8 interleaved pairs of processes (each 1.05-1.47x; medians of 20
    steps; CPU time, since the machine was shared and wall times varied 2x).
    """
    os.environ.setdefault(HUGE_PAGES, "1")
