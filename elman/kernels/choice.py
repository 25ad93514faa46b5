"""Which eligible path ``backend="auto"`` runs, decided from measurements on this machine.

Measured 2026-11-24 on the 2-core CPU (AMD EPYC, AVX2), torch 2.13.0, 2 threads, float32,
one layer, T=128, input size = H, huge-page allocation on (``elman/__init__.py``), sides in
a fresh random order each round: time of torch's fused op ("native") / time of Elman's
compiled loop ("fused"), so > 1 means fused is faster.

    training step             H=128              H=256              H=512
                         B=1  8  32  128    1   8   32  128    1   8   32  128
    LSTM                 .91 .91 1.0 1.1   1.1 .89 1.1 1.1   .77 .77 1.1 1.2
    GRU                  7.8 4.2 2.4 1.4   4.0 1.9 1.4 1.1   2.6 1.5 1.1 .89
    RNN                  5.7 3.5 2.2 1.3   3.9 2.2 1.5 1.1   2.6 1.6 1.2 .90

    inference (no_grad)
    LSTM                 .78 .76 .92 1.0   .76 .67 .83 .90   .71 .60 .82 .90
    GRU                  3.2 2.2 1.6 1.4   1.7 1.4 1.3 1.2   1.2 1.1 1.1 1.1
    RNN                  2.6 1.7 1.5 1.3   1.8 1.5 1.2 1.2   1.2 1.2 1.1 1.0

torch's LSTM runs on oneDNN, which splits one sequence over both cores and at B <= 8 beats
even the GEMM floor of ``bench/layers.py`` (torch.mm per step); its GRU and RNN have no such
kernel, so there the compiled loop wins except for the largest training batches. Ratios
within 0.05 of 1 are within this machine's timing noise (torch.nn and the native path, the
same op, differed by up to 15% in single rows), so the rules below follow the clear
regions: the compiled LSTM only for training at B >= 32, and for inference one step at a
time (T = 1, a stream's step), where oneDNN's per-call set-up dominates. Measured
2026-11-24, 2-layer LSTM, H=256, inference, T=1, native / fused:

    threads   B=1   4    16   32   64
    2         1.85 3.1  3.6  2.9  1.1
    1         2.2  5.6  1.3  1.2  .97

(at T=2 the ratio is already 0.5-1.5 and noisy, so the rule stops at T=1). Where only one
path is eligible it runs; where none is, the reference loop. The full grid, with T=512 and
the layer-norm cells, is in ``bench/results/layers.md`` (``bench/layers.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the layers import this module
    from elman.nn.config import RecurrentConfig


def prefers_fused(mode: str, batch: int, hidden: int, training: bool, steps: int = 0) -> bool:
    """Whether the compiled loop beat torch's op for this configuration (tables above);
    ``steps``: the call's sequence length (0: unknown)."""
    if mode == "LSTM":
        return batch >= 32 if training else steps == 1
    if not training:
        return True
    return not (batch >= 128 and hidden >= 512)  # GRU, RNN_TANH, RNN_RELU


def choose(
    config: RecurrentConfig, eligible: list[str], batch: int, training: bool, steps: int = 0
) -> str:
    """The path for a call: one of ``eligible`` ("native", "fused"), else "reference"."""
    if len(eligible) == 2:
        fused = prefers_fused(config.mode, batch, config.hidden_size, training, steps)
        return "fused" if fused else "native"
    return eligible[0] if eligible else "reference"
