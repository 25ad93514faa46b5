r"""Probabilistic forecasters: a recurrent network and an output distribution per step, in two
forms (Salinas et al. 2017's DeepAR; Wen et al. 2017's MQ-RNN for the direct form).

autoregressive:  h_t = RNN(h_{t-1}, [z_{t-1} ; f_t ; e])        one step ahead, fed back
                 θ_t = head(h_t)                                 p(z_t | θ_t)
direct:          h_C = RNN over [z_t ; p_t ; f_t ; e], t ≤ C      the whole horizon at once
                 θ_{C+1..C+H} = head([h_C ; f_{C+1..C+H}])

z: the scaled target, p: past covariates (known up to the origin: direct form only), f:
known-future covariates (calendar features, ...), e: a learned embedding of the series id.

Heads: "gaussian", θ = (μ, σ) with σ = softplus(·) + 1e-3 and the negative log-likelihood
as loss; "quantile", θ = q levels kept in order (the lowest, then softplus increments) with
the pinball loss Σ_q max(τ_q (z - q), (τ_q - 1)(z - q)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elman.nn import build_recurrent

HEADS = ("gaussian", "quantile")
MODES = ("autoregressive", "direct")


class DistributionHead(nn.Module):
    """hidden (..., D) -> parameters (..., P): (μ, σ) or ordered quantiles."""

    def __init__(self, size: int, kind: str, levels: tuple[float, ...]) -> None:
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}; got {kind!r}")
        self.kind, self.levels = kind, levels
        self.width = 2 if kind == "gaussian" else len(levels)
        self.proj = nn.Linear(size, self.width)

    def forward(self, h: Tensor) -> Tensor:
        raw = self.proj(h)
        if self.kind == "gaussian":
            return torch.stack([raw[..., 0], F.softplus(raw[..., 1]) + 1e-3], dim=-1)
        steps = torch.cat([raw[..., :1], F.softplus(raw[..., 1:])], dim=-1)
        return steps.cumsum(-1)  # quantiles never cross

    def loss(self, theta: Tensor, z: Tensor) -> Tensor:
        """Mean loss of targets ``z`` (...) under parameters ``theta`` (..., P)."""
        if self.kind == "gaussian":
            mu, sigma = theta[..., 0], theta[..., 1]
            nll = torch.log(sigma) + 0.5 * ((z - mu) / sigma) ** 2 + 0.5 * math.log(2 * math.pi)
            return nll.mean()
        tau = theta.new_tensor(self.levels)
        diff = z.unsqueeze(-1) - theta
        return torch.maximum(tau * diff, (tau - 1) * diff).sum(-1).mean()

    def point(self, theta: Tensor) -> Tensor:
        """The point forecast: μ, or the median (the level nearest 0.5)."""
        if self.kind == "gaussian":
            return theta[..., 0]
        middle = min(range(len(self.levels)), key=lambda i: abs(self.levels[i] - 0.5))
        return theta[..., middle]

    def quantiles(self, theta: Tensor, levels: tuple[float, ...]) -> Tensor:
        """(..., len(levels)) quantiles; a quantile head gives only its own levels."""
        if self.kind == "gaussian":
            normal = torch.distributions.Normal(theta[..., 0], theta[..., 1])
            return torch.stack([normal.icdf(theta.new_tensor(q)) for q in levels], dim=-1)
        index = [self.levels.index(q) for q in levels]  # the caller checked they exist
        return theta[..., index]

    def sample(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One draw per row: Gaussian, or from the piecewise-linear quantile function. The
        noise is drawn where ``generator`` lives (the CPU by default) and moved to θ's device,
        so a seed gives the same paths on every device."""
        shape, dtype = theta.shape[:-1], theta.dtype
        if self.kind == "gaussian":
            noise = torch.randn(shape, generator=generator, dtype=dtype).to(theta.device)
            return theta[..., 0] + theta[..., 1] * noise
        u = torch.rand(shape, generator=generator, dtype=dtype).to(theta.device)
        return _interpolate(u, theta.new_tensor(self.levels), theta)


def _interpolate(u: Tensor, tau: Tensor, q: Tensor) -> Tensor:
    """The quantile function through points (tau, q), flat beyond the outer levels."""
    u = u.clamp(float(tau[0]), float(tau[-1])).contiguous()
    idx = torch.searchsorted(tau, u).clamp(1, len(tau) - 1)
    t0, t1 = tau[idx - 1], tau[idx]
    q0 = q.gather(-1, (idx - 1).unsqueeze(-1)).squeeze(-1)
    q1 = q.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    return q0 + ((u - t0) / (t1 - t0)).clamp(0, 1) * (q1 - q0)


class Forecaster(nn.Module):
    """See the module docstring; sizes: ``past`` and ``future`` covariates, ``series`` ids."""

    def __init__(
        self,
        mode: str,
        horizon: int,
        past: int = 0,
        future: int = 0,
        series: int = 1,
        id_embedding: int = 0,
        cell: str = "lstm",
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.1,
        head: str = "gaussian",
        levels: tuple[float, ...] = (0.1, 0.5, 0.9),
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if mode == "autoregressive" and past:
            raise ValueError(
                "past covariates are unknown beyond the forecast origin, so an autoregressive "
                "model cannot feed them; use mode='direct' or give them as future covariates"
            )
        self.mode, self.horizon, self.future = mode, horizon, future
        self.embed = nn.Embedding(series, id_embedding) if id_embedding else None
        inputs = 1 + past + future + id_embedding
        self.rnn = build_recurrent(cell, inputs, hidden, layers, dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        if mode == "direct":
            self.head = DistributionHead(hidden + future, head, levels)
            self.out = nn.Linear(hidden + horizon * future, horizon * hidden)
        else:
            self.head = DistributionHead(hidden, head, levels)
        self.hidden = hidden

    def _inputs(self, parts: list[Tensor], ids: Tensor | None, steps: int) -> Tensor:
        if self.embed is not None:
            e = self.embed(ids)[:, None, :].expand(-1, steps, -1)
            parts = [*parts, e]
        return torch.cat(parts, dim=-1)

    def step_parameters(self, lagged: Tensor, future: Tensor, ids: Tensor | None, state=None):
        """Autoregressive form: parameters (B, T, P) for z_t from z_{t-1} (B, T) and f_t
        (B, T, F), and the final state."""
        x = self._inputs([lagged.unsqueeze(-1), future], ids, lagged.shape[1])
        h, state = self.rnn(x, state)
        return self.head(self.drop(h)), state

    def horizon_parameters(
        self, z: Tensor, past: Tensor, future_context: Tensor, future_horizon: Tensor, ids
    ) -> Tensor:
        """Direct form: parameters (B, H, P) from the context z (B, C), its covariates and the
        horizon's known-future covariates (B, H, F)."""
        x = self._inputs([z.unsqueeze(-1), past, future_context], ids, z.shape[1])
        _, state = self.rnn(x)
        h_c = (state[0] if isinstance(state, tuple) else state)[-1]  # (B, hidden)
        b = z.shape[0]
        joined = torch.cat([h_c, future_horizon.reshape(b, -1)], dim=-1)
        per_step = torch.relu(self.out(self.drop(joined))).view(b, self.horizon, self.hidden)
        return self.head(torch.cat([self.drop(per_step), future_horizon], dim=-1))


__all__ = ["HEADS", "MODES", "DistributionHead", "Forecaster"]
