"""A short tour of Elman's layers: torch.nn parity on both paths, then a tiny model learning.

Run with ``make demo``. The character language model replaces this as the main job.
"""

from __future__ import annotations

import time

import torch

from elman import nn as enn


def parity() -> None:
    """Load a torch.nn.LSTM's weights into ours and compare outputs on each path."""
    torch.manual_seed(0)
    ref = torch.nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(4, 50, 16)
    want, _ = ref(x)
    for backend in ("native", "reference"):
        ours = enn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True, backend=backend)
        ours.load_state_dict(ref.state_dict())
        got, _ = ours(x)
        print(f"  {backend:9s} path: max |ours - torch.nn.LSTM| = {(got - want).abs().max():.2e}")


def learn_adding(cell: str, steps: int = 300, length: int = 30) -> float:
    """Train a small layer on the adding problem (Hochreiter & Schmidhuber 1997); return MSE."""
    torch.manual_seed(0)
    layer = {"lstm": enn.LSTM, "gru": enn.GRU, "ln-lstm": enn.LayerNormLSTM}[cell](
        2, 32, batch_first=True
    )
    head = torch.nn.Linear(32, 1)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(steps):
        values = torch.rand(64, length)
        marks = torch.zeros(64, length)
        pick = torch.stack([torch.randperm(length)[:2] for _ in range(64)])
        marks.scatter_(1, pick, 1.0)
        target = (values * marks).sum(1, keepdim=True)
        out, _ = layer(torch.stack([values, marks], dim=-1))
        loss = torch.nn.functional.mse_loss(head(out[:, -1]), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def main() -> None:
    print("Elman demo: recurrent layers that match torch.nn")
    parity()
    print("Learning the adding problem (T=30; predicting the mean scores MSE ~0.17):")
    for cell in ("lstm", "gru", "ln-lstm"):
        start = time.perf_counter()
        mse = learn_adding(cell)
        print(f"  {cell:8s} final batch MSE {mse:.4f}  ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
