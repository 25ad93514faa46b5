r"""A linear-chain conditional random field over per-step tag scores (Lafferty et al. 2001;
as the output layer of a BiLSTM tagger: Huang, Xu & Yu 2015; Lample et al. 2016).

For emissions E (B, T, K) from the encoder, tags y_1..y_n (n = the row's length), start
scores a, end scores b and transition scores A[i, j] (from tag i to tag j):

    s(y)     = a[y_1] + Σ_t E[t, y_t] + Σ_{t>1} A[y_{t-1}, y_t] + b[y_n]
    α_1(j)   = a[j] + E[1, j]
    α_t(j)   = logsumexp_i (α_{t-1}(i) + A[i, j]) + E[t, j]          forward algorithm
    log Z    = logsumexp_j (α_n(j) + b[j])
    -log p(y) = log Z - s(y)
    δ_t(j)   = max_i (δ_{t-1}(i) + A[i, j]) + E[t, j]                Viterbi, then backtrack

Fast path of the forward algorithm, a matrix product per step instead of a (B, K, K)
logsumexp, with shifts m_t = max_i α_{t-1}(i) and c = max A:

    α_t(j)   = m_t + c + log Σ_i exp(α_{t-1}(i) - m_t) exp(A[i, j] - c) + E[t, j]

The term of the best i is at least exp(min A - c), so the sum cannot underflow to 0 while
max A - min A < ``GEMM_RANGE`` (float32's smallest normal is e^-87): the eligibility check.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

GEMM_RANGE = 80.0


class CRF(nn.Module):
    """Tag-sequence scores, the forward-algorithm loss and Viterbi decoding, masked by length.

    emissions (B, T, K); tags (B, T) int64; mask (B, T) bool, True on real steps, each row a
    prefix of at least one step (padding only at the end).
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if isinstance(num_tags, bool) or not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"num_tags must be an integer >= 1, got {num_tags!r}")
        self.num_tags = num_tags
        self.start = nn.Parameter(torch.empty(num_tags))
        self.end = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.start, self.end, self.transitions):
            nn.init.uniform_(p, -0.1, 0.1)

    def _check(self, emissions: Tensor, mask: Tensor) -> None:
        if emissions.dim() != 3 or emissions.shape[-1] != self.num_tags:
            raise ValueError(
                f"emissions: expected (B, T, {self.num_tags}), got {tuple(emissions.shape)}"
            )
        if mask.shape != emissions.shape[:2] or mask.dtype != torch.bool:
            raise ValueError(
                f"mask: expected bool {tuple(emissions.shape[:2])}, got "
                f"{mask.dtype} {tuple(mask.shape)}"
            )
        if not bool(mask[:, 0].all()):
            raise ValueError("mask: every sequence needs at least its first step")

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """s(y) per row (B,)."""
        self._check(emissions, mask)
        m = mask.to(emissions.dtype)
        e = emissions.gather(2, tags.clamp(min=0).unsqueeze(2)).squeeze(2)  # (B, T)
        s = self.start[tags[:, 0]] + (e * m).sum(1)
        trans = self.transitions[tags[:, :-1].clamp(min=0), tags[:, 1:].clamp(min=0)]
        s = s + (trans * m[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        return s + self.end[last]

    def log_partition(self, emissions: Tensor, mask: Tensor, fast: bool | None = None) -> Tensor:
        """log Z per row (B,), by the forward algorithm. fast: the matrix-product form (None:
        where eligible, see the module docstring); False: the logsumexp reference."""
        self._check(emissions, mask)
        a = self.transitions
        if fast is None:
            fast = float(a.detach().max() - a.detach().min()) < GEMM_RANGE
        if fast:
            c = a.max().detach()
            expa = torch.exp(a - c)
        alpha = self.start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            if fast:
                m = alpha.max(dim=1, keepdim=True).values.detach()
                step = m + c + torch.log(torch.exp(alpha - m) @ expa) + emissions[:, t]
            else:
                step = torch.logsumexp(alpha.unsqueeze(2) + a, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t, None], step, alpha)  # finished rows keep their α
        return torch.logsumexp(alpha + self.end, dim=1)

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Negative log-likelihood -log p(tags) per row (B,)."""
        return self.log_partition(emissions, mask) - self.score(emissions, tags, mask)

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """The highest-scoring tag sequence of each row (Viterbi), as lists of its length."""
        self._check(emissions, mask)
        delta = self.start + emissions[:, 0]  # (B, K)
        back = []
        for t in range(1, emissions.shape[1]):
            best, arg = (delta.unsqueeze(2) + self.transitions).max(dim=1)  # (B, K)
            back.append(arg)
            delta = torch.where(mask[:, t, None], best + emissions[:, t], delta)
        last = (delta + self.end).argmax(dim=1).tolist()
        back_lists = torch.stack(back).tolist() if back else []  # (T-1, B, K), one conversion
        paths = []
        for b, n in enumerate(mask.sum(1).tolist()):
            path = [last[b]]
            for t in range(n - 1, 0, -1):
                path.append(back_lists[t - 1][b][path[-1]])
            paths.append(path[::-1])
        return paths
