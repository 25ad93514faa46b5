"""Which eligible path ``backend="auto"`` runs, decided from measurements on this machine.

Measured 2026-12-05 on the 2-core CPU (Intel Xeon, AVX2), torch 2.13.0, float32, one layer,
T=128, input size = H, sides interleaved in a fresh random order each round: time of
torch's fused op ("native") / time of Elman's compiled loop ("fused"), so > 1 means fused is
faster. Two settings: time-major input without an input gradient, and ``batch_first=True``
with an input that requires a gradient (what a layer inside a model gets), each at 1 and 2
threads:

    training step         H=128                H=256                H=512
                          B=1   8    32   128  1    8    32   128  1    8    32   128
    LSTM time-major  1t   1.12 0.97 1.04 1.10 1.17 1.11 1.11 1.07 1.19 0.98 1.25 1.22
                     2t   1.18 1.06 0.94 1.01 1.15 0.98 1.03 1.02 1.32 1.06 0.96 1.10
    LSTM batch+dx    1t   1.05 0.87 0.90 0.87 1.06 0.92 0.95 0.90 1.12 0.79 0.93 0.98
                     2t   1.12 1.00 0.85 0.95 1.14 0.92 0.95 0.93 1.27 0.92 0.83 0.92
    GRU  time-major  1t   8.09 3.65 1.88 1.24 6.83 2.41 1.44 1.16 2.98 1.65 1.24 1.14
                     2t   7.73 3.92 2.26 1.49 6.19 2.92 1.74 1.20 5.88 2.22 1.24 1.00
    GRU  batch+dx    1t   7.82 3.08 1.74 1.23 5.73 2.28 1.40 1.09 2.90 1.68 1.11 1.02
                     2t   8.13 3.58 2.10 1.41 4.99 2.27 1.69 1.09 5.68 2.13 1.37 1.02
    RNN  time-major  1t   6.79 2.56 1.26 1.00 4.17 2.04 1.35 0.96 4.80 2.14 1.28 0.97
                     2t   5.37 3.05 1.77 1.31 4.00 2.06 1.36 1.12 3.52 1.82 1.15 0.93
    RNN  batch+dx    1t   6.29 2.79 1.64 1.15 4.10 1.90 1.17 1.02 3.98 1.87 1.20 0.99
                     2t   5.63 2.76 1.69 1.27 3.42 2.16 1.31 1.04 3.52 1.88 1.22 0.95

    inference (no_grad), time-major
    LSTM             1t   .75  .61  .73  .71  .80  .87  .78  .86  1.06 .62  .68  .95
                     2t   .93  .74  .69  .73  .89  .81  .71  .80  1.01 .69  .60  .85
    GRU              1t   3.49 1.76 1.32 1.24 1.73 1.28 1.13 .96  1.18 1.19 1.11 1.06
                     2t   3.58 1.86 1.37 1.34 2.29 1.60 1.24 1.17 1.75 1.23 1.11 .99
    RNN              1t   2.91 1.62 1.18 1.09 1.81 1.26 1.08 1.00 1.25 1.19 1.01 1.05
                     2t   2.68 2.08 1.15 1.18 1.97 1.24 1.10 .96  1.43 1.17 1.04 .90

What decides it: for the LSTM the layout and the input gradient (torch's oneDNN op wins
every batch-first training case past B=1, the compiled loop most time-major ones) and the
batch, not the thread count; for GRU and RNN the size of a step's GEMM, B x H (the loop
saves per-step overhead that a large GEMM hides). The rules take the cases that win in
every setting and at both thread counts, and torch's op elsewhere, so ``auto`` is never
the slower choice by more than timing noise (a rule that reads the layout and the input
gradient would win up to 1.25x more for time-major LSTM training without an input gradient,
a setting layers inside models do not have):

- LSTM: the compiled loop for training at B = 1 and for inference one step at a time
  (T = 1, a stream's step, where oneDNN's per-call set-up dominates: native / fused 1.85 at
  B=1 and 2.9-3.6 at B=4-32, 2-layer H=256, measured 2026-11-24); torch's op otherwise.
- GRU, RNN: the compiled loop while B x H < 32768 (B=128 at H=256, B=64 at H=512 are
  where torch's op starts to tie or win), torch's op from there.

Where only one path is eligible it runs; where none is, the reference loop. The full grid
beside torch.nn, both settings and thread counts, is in ``bench/results/layers.md``
(``bench/layers.py``).
"""

from __future__ import annotations

from typing import Protocol

GEMM_LIMIT = 32768  # B x H from which torch's op ties or beats the loop (GRU, RNN)


def prefers_fused(mode: str, batch: int, hidden: int, training: bool, steps: int = 0) -> bool:
    """Whether the compiled loop beat torch's op for this configuration in every measured
    setting (tables above); ``steps``: the call's sequence length (0: unknown)."""
    if mode == "LSTM":
        return batch == 1 if training else steps == 1
    return batch * hidden < GEMM_LIMIT  # GRU, RNN_TANH, RNN_RELU


class Shape(Protocol):
    """What the choice reads of a layer's config (``elman.nn.config.RecurrentConfig`` has it;
    kernels import torch only, never the layers above them). Read-only, as frozen configs are."""

    @property
    def mode(self) -> str: ...

    @property
    def hidden_size(self) -> int: ...


def choose(config: Shape, eligible: list[str], batch: int, training: bool, steps: int = 0) -> str:
    """The path for a call: one of ``eligible`` ("native", "fused"), else "reference"."""
    if len(eligible) == 2:
        fused = prefers_fused(config.mode, batch, config.hidden_size, training, steps)
        return "fused" if fused else "native"
    return eligible[0] if eligible else "reference"
