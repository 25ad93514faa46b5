"""A tiny task for trainer tests: a GRU reads random sequences, carrying state across batches."""

from __future__ import annotations

import torch
from torch import nn

from elman import nn as enn


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = enn.GRU(3, 8, 2, batch_first=True, dropout=0.2)
        self.head = nn.Linear(8, 1)

    def forward(self, x, state=None):
        h, state = self.rnn(x, state)
        return self.head(h).squeeze(-1), state


class FakeTask:
    name = "fake"

    def __init__(self, nan_at: int | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(20, 4, 5, 3, generator=g)  # 20 batches of (B=4, T=5, 3)
        self.y = self.x.sum(-1)
        self.model = Model()
        self.nan_at, self.calls = nan_at, 0

    def batches(self, epoch: int):
        order = torch.randperm(20, generator=torch.Generator().manual_seed(epoch))
        return [(self.x[i], self.y[i]) for i in order.tolist()]

    def loss(self, model, batch, carry):
        self.calls += 1
        pred, state = model(batch[0], carry)
        loss = ((pred - batch[1]) ** 2).mean()
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        return loss, batch[1].numel(), state

    def evaluate(self, model):
        pred, _ = model(self.x[0])
        return {"val_loss": float(((pred - self.y[0]) ** 2).mean())}

    def describe(self):
        return {"kind": "fake"}
