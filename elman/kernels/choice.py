"""Which eligible path ``backend="auto"`` runs, decided from measurements on this machine.

Measured 2026-11-23 on the 2-core CPU (AMD EPYC, AVX2), torch 2.13.0, 2 threads, float32,
one layer, T=128, input size = H: time of torch's fused op ("native") / time of Elman's
compiled loop ("fused"), so > 1 means fused is faster.

    training step             H=128              H=256              H=512
                         B=1  8  32  128    1   8   32  128    1   8   32  128
    LSTM                 1.1 .94 1.0 .86   .90 .64 1.1 .93   1.0 .81 .88 .87
    GRU                  11  4.0 2.0 1.5   5.2 2.5 1.4 .81   4.2 2.1 1.1 .89
    RNN                  7.9 4.0 3.3 .87   7.1 2.0 1.3 .99   2.8 1.5 1.2 1.0

    inference (no_grad)
    LSTM                 .60 .86 .88 .77   .50 .74 .87 .95   .49 .61 1.1 .70
    GRU                  4.3 2.1 1.5 1.2   1.9 1.5 2.0 1.3   1.3 .94 1.1 1.3
    RNN                  2.4 2.2 2.1 1.3   3.0 1.6 1.2 1.2   1.5 .94 1.1 1.0

torch's LSTM runs on oneDNN, which splits one sequence over both cores; its GRU and RNN do
not, so there the compiled loop wins except for the largest training batches. With B=1
products split over both threads, the compiled LSTM measured 0.90 (H=128), 1.18-1.30 (H=256)
and 1.16 (H=512) in training at B=1 when timed alone, but 0.64-0.98 in ``bench/layers.py``,
which interleaves it with torch's op; so LSTMs stay on torch's op. Where only one path is
eligible it runs; where none is, the reference loop. The full grid, with T=512 and the
layer-norm cells, is in ``bench/results/layers.md`` (``bench/layers.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the layers import this module
    from elman.nn.config import RecurrentConfig


def prefers_fused(mode: str, batch: int, hidden: int, training: bool) -> bool:
    """Whether the compiled loop beat torch's op for this configuration (table above)."""
    if mode == "LSTM":
        return False
    if not training:
        return True
    if mode == "GRU":
        return not (batch >= 128 and hidden >= 256)
    return batch < 128  # RNN_TANH, RNN_RELU


def choose(config: RecurrentConfig, eligible: list[str], batch: int, training: bool) -> str:
    """The path for a call: one of ``eligible`` ("native", "fused"), else "reference"."""
    if len(eligible) == 2:
        fused = prefers_fused(config.mode, batch, config.hidden_size, training)
        return "fused" if fused else "native"
    return eligible[0] if eligible else "reference"
