"""Export a trained run (a model directory) as ONNX, checked in onnxruntime on random inputs
and on real ones from the run's own held-out data (``elman export DIR --format onnx``).

Every task's graphs are in ``elman.tasks.graphs``; here each task's model is loaded, the real
inputs are read, and each graph is written to ``OUT/NAME.onnx`` and checked: the largest
|ONNX - PyTorch| per graph and input kind, an error past the tolerance. Seq2seq models are
also decoded greedily twice, once stepping the decoder graph in onnxruntime, once in PyTorch,
and the tokens must agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from elman.data.batching import pad
from elman.data.tokenize import EOS_ID, PAD_ID
from elman.decode import greedy_search
from elman.files import output_dir, output_file
from elman.graphs import onnx as ox
from elman.graphs.graph import Graph, export_checked
from elman.tasks import graphs
from elman.tasks.rundir import task_of
from elman.tasks.seq2seq import graphs as s2s

TASKS = ("charlm", "wordlm", "music", "classify", "tag", "seq2seq", "forecast")
REAL_ROWS = 8  # held-out examples per real check
Real = dict[str, tuple[Tensor, ...]]  # graph name -> inputs


def export_run(
    run: str | Path,
    out: str | Path | None = None,
    mode: str | None = None,
    tolerance: float = 1e-4,
    checkpoint: str = "best",
    task: str | None = None,
    overwrite: bool = True,
) -> dict:
    """Write the model of the run in ``run`` as ONNX and check it; returns a summary.

    out: the ONNX file of a one-graph model, or the folder of a seq2seq model's two
    (default: ``run``). mode: "sequence" or "step" for language and music models (default:
    sequence); other tasks export whole sequences (encoders) and decoder steps as they need.
    task: the run's task, when the caller has read it already. overwrite: off, a file that
    already exists at ``out`` is an error (the default paths in ``run`` are always replaced).
    """
    if not tolerance > 0:
        raise ValueError(f"tolerance: expected a value > 0, got {tolerance}")
    task = task or task_of(run)
    if mode is not None:
        ox.check_mode(mode)
        if mode == "step" and task not in ("charlm", "wordlm", "music"):
            raise ValueError(
                f"mode: 'step' is for language and music models; a {task} model exports its "
                "own graphs (see elman.tasks.graphs)"
            )
    found, real, extra = _load(task, run, mode or "sequence", checkpoint)
    paths = _paths(found, run, out, overwrite)
    diffs = export_checked(found, paths, real, tolerance)
    summary = {"task": task, "onnx": {k: str(p) for k, p in paths.items()}}
    if len(found) == 1:
        summary["onnx"] = str(paths[found[0].name])
    if task in ("charlm", "wordlm", "music"):
        summary["mode"] = mode or "sequence"
    summary |= {"max_abs_diff": diffs, "tolerance": tolerance}
    if extra is not None:
        summary |= extra(paths)
    return summary


def _paths(
    found: Sequence[Graph], run: str | Path, out: str | Path | None, overwrite: bool
) -> dict[str, Path]:
    """Where each graph goes; an error for a directory where a file goes (or the reverse),
    and for a file already at a given ``out`` unless ``overwrite``."""
    if len(found) == 1:
        name = found[0].name
        return {name: output_file(out, "--out", overwrite) if out else Path(run) / f"{name}.onnx"}
    folder = output_dir(out, "--out") if out else Path(run)
    if folder.suffix == ".onnx":
        raise ValueError(f"out: this model has {len(found)} graphs; give a folder, got {folder}")
    paths = {g.name: folder / f"{g.name}.onnx" for g in found}
    if out:
        for path in paths.values():
            output_file(path, "--out", overwrite)
    return paths


def _load(task: str, run: str | Path, mode: str, checkpoint: str):
    """(graphs, real inputs by graph, an extra check or None) of the run's model."""
    if task in ("charlm", "wordlm", "music"):
        return (*_language(task, run, mode, checkpoint), None)
    if task == "classify":
        return (*_classify(run, checkpoint), None)
    if task == "tag":
        return (*_tag(run, checkpoint), None)
    if task == "seq2seq":
        return _seq2seq(run, checkpoint)
    if task == "forecast":
        return (*_forecast(run, checkpoint), None)
    raise ValueError(f"`elman export` knows the tasks {', '.join(TASKS)}; {run} holds a {task!r}")


def _language(task: str, run, mode: str, checkpoint: str) -> tuple[list[Graph], Real]:
    from elman.tasks.lm import charlm, wordlm
    from elman.tasks.music import sampling
    from elman.tasks.music import task as music

    frames = False
    if task == "charlm":
        model, vocab, _ = charlm.load(run, checkpoint)
        x, size = charlm.validation_ids(run)[:64][None], len(vocab)
    elif task == "wordlm":
        model, tokenizer, _ = wordlm.load(run, checkpoint)
        x = torch.tensor([EOS_ID, *tokenizer.encode("the man said that it was")])[None]
        size = len(tokenizer)
    else:
        model, encoding, meta = music.load(run, checkpoint)
        x, size = sampling.primer_from(meta, 0, 32)[None], encoding.outputs
        frames = not encoding.tokens
    found = graphs.language_graphs(model, size, frames, mode)
    x = x[:, :1] if mode == "step" else x
    return found, {found[0].name: graphs.model_inputs(model, x)}


def _held_out(read: Callable[[], Sequence], what: str) -> Sequence:
    """The first split (test, validation, training) of the run's own data that has rows;
    empty when that data cannot be read again (moved, or given in Python): the real check
    is then left out."""
    try:
        splits = read()
    except (OSError, ValueError) as e:
        warnings.warn(
            f"no real-data check: the run's {what} cannot be read again ({e})", stacklevel=3
        )
        return []
    return next((s for s in splits if s), [])


def _classify(run, checkpoint: str) -> tuple[list[Graph], Real]:
    from elman.tasks.classify import task as classify
    from elman.tasks.classify.sources import load_source

    trained = classify.load(run, checkpoint)
    found = graphs.classifier_graphs(trained.model)
    source = trained.meta["task_config"]["source"]
    examples = _held_out(lambda: load_source(source)[::-1], "examples")
    if not examples:
        return found, {}
    x, lengths = pad(trained.encoder(list(examples.inputs[:REAL_ROWS]), "export"), PAD_ID)
    return found, {"model-sequence": (x, lengths)}


def _tag(run, checkpoint: str) -> tuple[list[Graph], Real]:
    from elman.tasks.tag import task as tag

    model, vocab, meta = tag.load(run, checkpoint)
    found = graphs.tagger_graphs(model)
    source = meta["task_config"]["source"]
    sentences = _held_out(lambda: tag.load_source(source)[::-1], "sentences")
    if not sentences:
        return found, {}
    rows = [vocab.encode([w for w, _ in s]) for s in sentences[:REAL_ROWS]]
    words, lengths = pad([r[0] for r in rows])
    chars, _ = pad([r[1] for r in rows])
    return found, {"model-sequence": (words, chars, lengths)}


def _seq2seq(run, checkpoint: str):
    from elman.tasks.seq2seq import task as seq2seq

    model, vocab, config, meta = seq2seq.load(run, checkpoint)
    found = s2s.seq2seq_graphs(model)
    source = meta["task_config"]["source"]
    pairs = _held_out(lambda: seq2seq.load_source(source)[::-1], "pairs")
    sources = [vocab.encode_source(s, config.max_source, "export") for s, _ in pairs[:REAL_ROWS]]
    if sources:
        source, lengths = pad(sources, PAD_ID)
    else:  # random sources still show the step graph decodes as PyTorch does
        source, lengths = found[0].draw(4, 6, torch.Generator().manual_seed(1))
    with torch.no_grad():
        state = model.eval().encode(source, lengths)
    tokens = torch.full((len(source),), EOS_ID)
    real = {"encoder": (source, lengths), "decoder-step": s2s.step_inputs(model, tokens, state)}

    def greedy(paths: dict[str, Path]) -> dict:
        limit, n = config.max_target, len(source)
        want = _tokens(greedy_search(model.step, state, n, EOS_ID, EOS_ID, limit))
        graph_paths = (paths["encoder"], paths["decoder-step"])
        runtime = s2s.greedy(*graph_paths, source, lengths, EOS_ID, EOS_ID, limit)
        if _tokens(runtime) != want:
            raise ValueError(
                "ONNX export: greedy decoding through the decoder-step graph in onnxruntime "
                f"gave other tokens than PyTorch's on {n} sources"
            )
        return {"greedy_tokens_match": True, "greedy_sources": n}

    return found, (real if sources else {}), greedy


def _tokens(hypotheses) -> list[list[int]]:
    return [h.tokens for h in hypotheses]


def _forecast(run, checkpoint: str) -> tuple[list[Graph], Real]:
    from elman.tasks.forecast import trained as forecast_runs
    from elman.tasks.forecast.data import modelled, window_stats

    trained = forecast_runs.load(run, checkpoint)
    model, c = trained.model, trained.config
    found = graphs.forecaster_graphs(model)
    series = _held_out(lambda: [forecast_runs.load_source(trained.info["source"])], "series")
    if not series:
        return found, {}
    data = trained.prepare(series[0])
    span = c.context + c.horizon
    if len(data.z) < span:
        return found, {}
    z, past, future = (t[-span:][None] for t in (data.z, data.past, data.future))
    loc, scale = window_stats(z[:, : c.context], c.normalize)
    z, context = (z - loc) / scale, c.context
    named = {"ids": torch.tensor([data.index])}
    if c.mode == "direct":
        named |= {"z": z[:, :context], "past": past[:, :context]}
        named |= {"future_context": future[:, :context], "future_horizon": future[:, context:]}
    else:
        u, f = modelled(z[:, :context], future[:, :context], c.difference)
        named |= {"lagged": u[:, :-1], "future": f[:, 1:]}
        named |= dict(zip(("h0", "c0"), model.rnn.zero_state(1), strict=False))
    return found, {found[0].name: tuple(named[n] for n in found[0].inputs)}
