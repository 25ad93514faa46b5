"""Looking inside a trained language model (``elman explain DIR TEXT`` for charlm and wordlm):
unit activations over a text as a heat map, the units that track a signal, gate saturation,
which earlier pieces a prediction owes most to, and gradient flow through time beside fresh
RNN, LSTM and GRU layers of the same size.

Signals are one number per piece (character or token) of the text: built in are
``quotes`` (1 inside double quotes, else 0) and ``line-position`` (pieces since the last
newline); any other value is a file of numbers, one per piece, whitespace-separated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from elman.nn import build_recurrent
from elman.tasks.lm.model import RecurrentLM
from elman.viz.activations import Trace, correlated_units, saturation, trace
from elman.viz.gradflow import layer_gradient_flow
from elman.viz.saliency import gradient_times_input, occlusion

SIGNALS = ("quotes", "line-position")


def builtin_signal(name: str, pieces: Sequence[str]) -> Tensor:
    """The built-in signal ``name`` over ``pieces``."""
    values, inside, position = [], False, 0
    for piece in pieces:
        if name == "quotes":
            if '"' in piece:
                inside = not inside if piece.count('"') % 2 else inside
                values.append(1.0)  # the quote marks count as inside
            else:
                values.append(1.0 if inside else 0.0)
        elif name == "line-position":
            values.append(float(position))
            position = 0 if "\n" in piece else position + 1
        else:
            raise ValueError(
                f"signal: expected one of {', '.join(SIGNALS)} or a file, got {name!r}"
            )
    return torch.tensor(values)


def read_signal(spec: str, pieces: Sequence[str]) -> Tensor:
    """A built-in signal by name, else the numbers in the file ``spec``."""
    if spec in SIGNALS:
        return builtin_signal(spec, pieces)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"signal: {spec!r} is neither a built-in signal ({', '.join(SIGNALS)}) nor a file"
        )
    try:
        values = [float(v) for v in path.read_text().split()]
    except ValueError as e:
        raise ValueError(f"signal: {spec} must hold numbers only ({e})") from None
    if len(values) != len(pieces):
        raise ValueError(
            f"signal: {spec} holds {len(values)} numbers; the text has {len(pieces)} pieces "
            "(one number per character or token expected)"
        )
    return torch.tensor(values)


@dataclass(frozen=True)
class Explanation:
    """What ``explain_lm`` found; ``files`` lists what it wrote."""

    unit: int
    kind: str
    layer: int
    top_units: list[tuple[int, float]]
    saturation: list[dict[str, dict[str, float]]]
    saliency: dict[str, object]
    gradient_flow: dict[str, list[float]]
    files: dict[str, str]

    def summary(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def lm_trace(model: RecurrentLM, ids: Tensor) -> Trace:
    """The trace of ``model``'s recurrent layers over one sequence of ids (T,)."""
    with torch.no_grad():
        emb = model.embed(ids[None, :])
    return trace(model.rnn, emb)


def next_token_score(model: RecurrentLM, target: int):
    """Embeddings (N, T, E) -> log p(target | the pieces) after the last one (N,)."""

    def score(emb: Tensor) -> Tensor:
        h, _ = model.rnn(emb)
        h = h[:, -1:] if model.proj is None else model.proj(h[:, -1:])
        return F.log_softmax(model.logits(h)[:, 0], dim=-1)[:, target]

    return score


def lm_saliency(model: RecurrentLM, ids: Tensor, target: int | None = None) -> dict[str, object]:
    """Gradient x input and occlusion (zero embedding) of log p(next = target) over the
    pieces; ``target`` defaults to the model's own likeliest next token."""
    model.eval()
    with torch.no_grad():
        emb = model.embed(ids[None, :])[0]
        if target is None:
            logits, _ = model(ids[None, :])
            target = int(logits[0, -1].argmax())
    score = next_token_score(model, target)
    with torch.no_grad():
        log_prob = float(score(emb[None])[0])
    return {
        "target": target,
        "log_prob": log_prob,
        "gradient_x_input": gradient_times_input(score, emb).tolist(),
        "occlusion": occlusion(score, emb).tolist(),
    }


def flow_comparison(model: RecurrentLM, steps: int, seed: int = 0) -> dict[str, Tensor]:
    """||dL/dh_t|| for the model's first layer and fresh RNN, LSTM, GRU of the same size."""
    cfg = model.rnn.config
    curves = {f"trained {cfg.mode.lower()}": layer_gradient_flow(model.rnn, steps, seed=seed)}
    for cell in ("rnn", "lstm", "gru"):
        with torch.random.fork_rng():  # seeded fresh weights, the caller's RNG untouched
            torch.manual_seed(seed)
            fresh = build_recurrent(cell, cfg.input_size, cfg.hidden_size)
        curves[f"fresh {cell}"] = layer_gradient_flow(fresh, steps, seed=seed)
    return curves


def mean_saturation(shares: list) -> list[dict[str, dict[str, float]]]:
    """Per layer (first direction) of ``saturation``'s shares: each gate's mean
    left/right-saturated share over its units."""
    return [
        {g: {side: float(v.mean()) for side, v in s.items()} for g, s in layer[0].items()}
        for layer in shares
    ]


def explain_lm(
    model: RecurrentLM,
    pieces: Sequence[str],
    ids: Tensor,
    out: str | Path,
    *,
    unit: int | None = None,
    signal: str | None = None,
    layer: int = -1,
    kind: str = "h",
    flow_steps: int = 100,
) -> Explanation:
    """Everything ``elman explain`` shows for one text, written under ``out``:
    ``unit-K.html``/``.png`` (the text coloured by unit K), ``saturation.png``,
    ``saliency.html`` and ``gradient-flow.png``. The unit is ``unit``, else the one most
    correlated with ``signal``, else the one that varies most over the text."""
    from elman.viz.activations import plot_saturation
    from elman.viz.gradflow import plot_gradient_flow
    from elman.viz.heatmap import write_text_heatmap

    if len(pieces) != ids.numel() or ids.numel() < 2:
        raise ValueError(f"text: expected at least 2 pieces, got {len(pieces)}")
    tr = lm_trace(model, ids)
    values = tr.values(kind, layer)[:, 0]  # (T, H)
    top: list[tuple[int, float]] = []
    if signal is not None:
        top = correlated_units(values, read_signal(signal, pieces))
    if unit is None:
        unit = top[0][0] if top else int(values.var(0).argmax())
    if not 0 <= unit < values.shape[1]:
        raise ValueError(f"unit: expected an index in [0, {values.shape[1]}), got {unit}")
    out = Path(out)
    files = {}
    title = f"layer {layer} {kind}, unit {unit}"
    for suffix in ("html", "png"):
        path = write_text_heatmap(out / f"unit-{unit}.{suffix}", pieces, values[:, unit], title)
        files[f"heatmap_{suffix}"] = str(path)
    sat = saturation(tr)
    if tr.gates[0][0]:
        files["saturation_png"] = str(plot_saturation(sat, out / "saturation.png"))
    sal = lm_saliency(model, ids)
    grads: list[float] = sal["gradient_x_input"]  # type: ignore[assignment]
    path = write_text_heatmap(out / "saliency.html", pieces, grads, "gradient x input")
    files["saliency_html"] = str(path)
    curves = flow_comparison(model, flow_steps)
    files["gradient_flow_png"] = str(plot_gradient_flow(curves, out / "gradient-flow.png"))
    return Explanation(
        unit,
        kind,
        layer,
        top,
        mean_saturation(sat),
        sal,
        {k: v.tolist() for k, v in curves.items()},
        files,
    )
