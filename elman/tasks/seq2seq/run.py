"""A trained sequence-to-sequence run (``Seq2SeqRun``) and the task's ``SPEC``: transduce
sources (``predict``), score pairs or the run's held-out split (``evaluate``), open decoder
streams on a source, and export the encoder and decoder-step graphs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from elman.data.batching import pad
from elman.data.pairs import Pairs, read_pairs
from elman.data.tokenize import EOS_ID, PAD_ID
from elman.decode import Hypothesis, Sampling
from elman.nn.seq2seq import Seq2Seq
from elman.tasks import spaces
from elman.tasks.rundir import open_model, recorded_source
from elman.tasks.seq2seq import task as s2s
from elman.tasks.seq2seq.stream import DecoderStream
from elman.tasks.spec import Run, TaskSpec

if TYPE_CHECKING:  # imported where used: export needs onnx only when it runs
    from elman.graphs.graph import Export

SPLITS = ("valid", "test")


class Seq2SeqRun(Run):
    """A trained transducer: ``model`` (a ``Seq2Seq``), its source and target ``vocab`` and
    its ``config`` (``Seq2SeqConfig``: the length limits and tokenization)."""

    model: Seq2Seq
    config: s2s.Seq2SeqConfig

    def __init__(
        self,
        path: str | Path,
        which: str,
        model: Seq2Seq,
        meta: dict,
        config: s2s.Seq2SeqConfig,
        vocab: s2s.Vocabularies,
    ) -> None:
        super().__init__(path, which, model, meta, config)
        self.vocab = vocab

    def recurrent(self) -> None:
        # encoder and decoder both recur; a run's description has never named either's cell
        return None

    def details(self) -> dict:
        return {"max_source": self.config.max_source, "max_target": self.config.max_target}

    def instead(self, verb: str) -> str:
        return "a seq2seq model transduces text with `elman translate`"

    # ---- transduction -------------------------------------------------------------------
    def transduce(
        self,
        sources: Sequence[str],
        beam: int = 1,
        nbest: int = 1,
        alpha: float = 0.0,
        sampling: Sampling | None = None,
    ) -> list[list[Hypothesis]]:
        """The n-best hypotheses of each source, best first (``elman.tasks.seq2seq.task``)."""
        return s2s.transduce(
            self.model, self.vocab, sources, self.config, beam, nbest, alpha, sampling
        )

    def predict(
        self,
        inputs: Sequence[str],
        beam: int = 1,
        nbest: int = 1,
        alpha: float = 0.0,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[dict]:
        """One row per source: ``input``, its best ``output``, the ``nbest`` outputs (score,
        logprob, finished) and the source tokens the vocabulary lacks (``unknown``). A
        ``temperature`` > 0 samples one output (seeded by ``seed``) instead of searching."""
        found = self.transduce(inputs, beam, nbest, alpha, Sampling(temperature, seed=seed))
        decode = self.vocab.target.decode
        rows = []
        for text, hyps in zip(inputs, found, strict=True):
            best = [
                {
                    "output": decode(h.tokens),
                    "score": round(h.score, 4),
                    "logprob": round(h.logprob, 4),
                    "finished": h.finished,
                }
                for h in hyps
            ]
            rows.append({"input": text, "output": best[0]["output"], "nbest": best})
            rows[-1]["unknown"] = self.vocab.unknown(text)
        return rows

    def test(self) -> dict:
        return self.evaluate(split="test")

    def evaluate(
        self,
        data: str | Path | Pairs | None = None,
        split: str | None = None,
        beam: int = 1,
        alpha: float = 0.0,
    ) -> dict:
        """Error rates (``metric_names``) on ``data`` (a source<TAB>target file, or pairs of
        a source and its references) or, without it, on the run's ``split`` (default: test)."""
        if data is None:
            return self._score_split(split or "test", beam, alpha)
        pairs = read_pairs(data) if isinstance(data, str | Path) else data
        result = s2s.score(self.model, self.vocab, pairs, self.config, beam, alpha)
        return result | ({"data": str(data)} if isinstance(data, str | Path) else {})

    def _score_split(self, split: str, beam: int, alpha: float) -> dict:
        if split not in SPLITS:
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        source = recorded_source(self.meta, self.path / f"{self.which}.safetensors")
        _, valid, test = s2s.load_source(source)
        pairs = valid if split == "valid" else test
        if not pairs:
            raise ValueError(f"this run's data has no {split} split; pass a pairs file to score")
        return s2s.score(self.model, self.vocab, pairs, self.config, beam, alpha) | {
            "data": f"{split} split"
        }

    # ---- streams ------------------------------------------------------------------------
    def open_stream(self, source: Any = None, **options: Any) -> DecoderStream:
        """A decoder stream on ``source``: (S,) source token ids, or text this run's source
        vocabulary encodes. Feed the start token (``<eos>``) first."""
        if options:
            raise ValueError(f"options: a seq2seq stream takes none, got {sorted(options)}")
        if source is None:
            raise ValueError("source: a decoder stream is opened on a source; give source=")
        if isinstance(source, str):
            source = self.vocab.encode_source(source, self.config.max_source, "source")
        return DecoderStream(self.model, source)

    def restore_stream(self, data: bytes) -> DecoderStream:
        return DecoderStream.from_bytes(self.model, data)

    # ---- export -------------------------------------------------------------------------
    def graphs(self, mode: str | None = None) -> Export:
        """The "encoder" and "decoder-step" graphs (``elman.graphs.graph.Export``), checked on
        sources of the run's own held-out pairs, and greedy decoding through the step graph in
        onnxruntime, which must give PyTorch's tokens (on random sources when the pairs
        cannot be read again: they still show the step graph decodes as PyTorch does)."""
        from elman.graphs.graph import REAL_ROWS, Export, held_out
        from elman.tasks.seq2seq import graphs as s2s_graphs

        _refuse_mode(mode)
        found = s2s_graphs.seq2seq_graphs(self.model)
        recorded = self.meta["task_config"]["source"]
        pairs = held_out(lambda: s2s.load_source(recorded)[::-1], "pairs")  # test first
        limit = self.config.max_source
        sources = [self.vocab.encode_source(s, limit, "export") for s, _ in pairs[:REAL_ROWS]]
        if sources:
            source, lengths = pad(sources, PAD_ID)
        else:
            source, lengths = found[0].draw(4, 6, torch.Generator().manual_seed(1))
        with torch.no_grad():
            state = self.model.eval().encode(source, lengths)
        tokens = torch.full((len(source),), EOS_ID)
        real = {
            "encoder": (source, lengths),
            "decoder-step": s2s_graphs.step_inputs(self.model, tokens, state),
        }
        check = _greedy_check(self.model, state, source, lengths, self.config.max_target)
        return Export(found, real if sources else {}, check)


def _refuse_mode(mode: str | None) -> None:
    """Transducers export their own graphs: only language and music models take a mode."""
    if mode is None:
        return
    from elman.graphs import onnx as ox

    ox.check_mode(mode)
    if mode == "step":
        raise ValueError(
            "mode: 'step' is for language and music models; a seq2seq model exports its "
            "own graphs (see elman.tasks.seq2seq.graphs)"
        )


def _greedy_check(model: Seq2Seq, state, source, lengths, limit: int):
    """``check(paths)``: greedy decoding of ``source`` stepping the written decoder graph in
    onnxruntime must give the tokens PyTorch's greedy decoding gives."""
    from elman.decode import greedy_search
    from elman.tasks.seq2seq import graphs as s2s_graphs

    def check(paths: dict[str, Path]) -> dict:
        n, eos = len(source), EOS_ID
        want = [h.tokens for h in greedy_search(model.step, state, n, eos, eos, limit)]
        graph_paths = (paths["encoder"], paths["decoder-step"])
        runtime = s2s_graphs.greedy(*graph_paths, source, lengths, eos, eos, limit)
        if [h.tokens for h in runtime] != want:
            raise ValueError(
                "ONNX export: greedy decoding through the decoder-step graph in onnxruntime "
                f"gave other tokens than PyTorch's on {n} sources"
            )
        return {"greedy_tokens_match": True, "greedy_sources": n}

    return check


def load(out: str | Path, which: str = "best") -> Seq2SeqRun:
    """The run in ``out``: its model (eval mode), vocabularies, config and checkpoint meta."""
    model, (vocab, config), meta = open_model(out, s2s.NAME, which, s2s.model_from)
    return Seq2SeqRun(out, which, model, meta, config, vocab)


# `elman tune seq2seq`'s default space: sizes a CPU trains in minutes; input feeding only with
# an attention (without one it would feed the decoder its own output back). Label smoothing
# and scheduled sampling are left out: the teacher-forced val_loss cannot show their gain.
# Weight decay only with AdamW (decoupled; under Adam it stays 0), min_lr only with cosine.
SPACE = {
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "embedding": dict(type="int", low=32, high=128, step=32),
    "hidden": dict(type="int", low=128, high=512, step=128),
    "layers": dict(type="int", low=1, high=2),
    "bidirectional": dict(type="categorical", choices=[True, False]),
    "attention": dict(type="categorical", choices=["general", "dot", "additive", "none"]),
    "input_feeding": dict(
        type="categorical",
        choices=[False, True],
        when={"attention": ["general", "dot", "additive"]},
    ),
    "dropout": dict(type="float", low=0.0, high=0.5),
    "batch_size": dict(type="categorical", choices=[32, 64, 128]),
    **spaces.optimizer(3e-4, 1e-2),
}


SPEC = TaskSpec(
    name=s2s.NAME,
    summary="encoder-decoder with attention (e.g. grapheme-to-phoneme)",
    config=s2s.Seq2SeqConfig,
    load=load,
    resume=s2s.resume,
    command="elman.tasks.seq2seq.command",
    served="elman.serve.seq2seq:Seq2SeqModel",
    train_defaults={"steps": 5000, "lr": 2e-3, "eval_every": 500, "clip_norm": 5.0},
    space=SPACE,
    # val_loss (nats per target token): the error rates' names change with --target-tokens
    objective="val_loss",
)
Seq2SeqRun.spec = SPEC

__all__ = ["SPEC", "Seq2SeqRun", "load"]
