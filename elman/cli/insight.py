"""``elman explain DIR TEXT``: look inside a trained model.

- seq2seq: the attention heat map of the output for TEXT (``--png``);
- charlm / wordlm: unit activations over TEXT as a heat map (HTML and PNG), the units most
  correlated with ``--signal``, gate saturation, the saliency of the next-token prediction
  and gradient flow through time beside fresh RNN, LSTM and GRU layers (``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from elman.cli import seq2seq as s2s
from elman.cli.options import integer, refuse_unread
from elman.data.tokenize import EOS_ID
from elman.files import output_dir, output_file
from elman.tasks.lm import charlm, wordlm
from elman.tasks.lm import explain as insight

MAX_LENGTH = 1000


def add_parsers(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser(
        "explain",
        help="look inside a model: attention (seq2seq), activations and saliency (charlm/wordlm)",
    )
    ex.add_argument("dir", help="model directory")
    ex.add_argument("text", help="seq2seq: the input to transduce; charlm/wordlm: a text to read")
    ex.add_argument("--png", help="seq2seq: the heat map (default: DIR/attention-TEXT.png)")
    s2s.add_search_options(ex, "seq2seq: ")
    ex.add_argument("--out", help="charlm/wordlm: folder for the files (default: DIR/explain)")
    ex.add_argument("--unit", type=integer, default=None, help="the unit to colour the text by")
    ex.add_argument(
        "--signal",
        help=f"find units that track it: {', '.join(insight.SIGNALS)}, or a file with one "
        "number per character (charlm) or token (wordlm)",
    )
    ex.add_argument("--layer", type=integer, default=-1, help="which layer (default: the last)")
    ex.add_argument(
        "--kind", default="h", help="h, c (LSTM) or a gate: i f g o (LSTM), r z n (GRU)"
    )
    ex.add_argument("--flow-steps", type=integer, default=100, help="gradient-flow sequence length")
    ex.add_argument(
        "--max-length",
        type=integer,
        default=MAX_LENGTH,
        help="charlm/wordlm: the longest TEXT, in characters or tokens; occlusion saliency "
        "runs the model once per piece, so the time grows with the square of the length "
        f"(default: {MAX_LENGTH}, about half a minute on a 2-core CPU for the default model)",
    )
    ex.add_argument("--checkpoint", choices=("best", "last"), default="best")


# Options of `elman explain` that only some tasks read: any other task would ignore them.
EXPLAIN_ONLY = {
    "png": ("seq2seq",),
    "beam": ("seq2seq",),
    "alpha": ("seq2seq",),
    "out": ("charlm", "wordlm"),
    "unit": ("charlm", "wordlm"),
    "signal": ("charlm", "wordlm"),
}


def explain(a: argparse.Namespace, task: str) -> dict:
    refuse_unread(a, task, EXPLAIN_ONLY)
    if task == "seq2seq":
        if a.png:
            output_file(a.png, "--png")
        return s2s.explain(a)
    out = output_dir(a.out, "--out") if a.out else Path(a.dir) / "explain"
    if a.flow_steps < 1:
        raise ValueError(f"--flow-steps: expected a positive integer, got {a.flow_steps}")
    if a.max_length < 2:
        raise ValueError(f"--max-length: expected an integer >= 2, got {a.max_length}")
    if task == "charlm":
        model, vocab, _ = charlm.load(a.dir, a.checkpoint)
        ids, unit = vocab.encode(a.text), "characters"
        name = lambda i: vocab.chars[i]  # noqa: E731
        pieces = [name(int(i)) for i in ids]
    elif task == "wordlm":
        model, tokenizer, _ = wordlm.load(a.dir, a.checkpoint)
        ids, unit = torch.tensor([EOS_ID, *tokenizer.encode(a.text)]), "tokens"
        name = lambda i: "<eos>" if i == EOS_ID else tokenizer.decode([i])  # noqa: E731
        pieces = [name(int(i)) + " " for i in ids]
    else:
        raise ValueError(
            f"`elman explain` reads seq2seq, charlm and wordlm models; {a.dir} holds a {task} model"
        )
    if len(pieces) > a.max_length:
        raise ValueError(
            f"text: {len(pieces)} {unit} is longer than --max-length {a.max_length} (saliency "
            "by occlusion runs the model once per piece: the time grows with the square of the "
            "length); pass a shorter text, or raise --max-length"
        )
    found = insight.explain_lm(
        model,
        pieces,
        ids,
        out,
        unit=a.unit,
        signal=a.signal,
        layer=a.layer,
        kind=a.kind,
        flow_steps=a.flow_steps,
    )
    summary = found.summary()
    summary["saliency"]["target_piece"] = name(summary["saliency"]["target"])  # type: ignore[index]
    return summary
