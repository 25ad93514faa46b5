"""Sequence-to-sequence models over HTTP: ``transduce`` (each request one search, since beam
settings differ between requests) and decoder sessions: opened on a ``source``, fed target
tokens, they answer the next target token's top-k."""

from __future__ import annotations

import torch

from elman.data.tokenize import EOS_ID, PAD_ID, UNK_ID
from elman.serve.config import Limits
from elman.serve.language import NextStepSessions, top_k_option
from elman.serve.served import Chunk, RequestError, check_count, check_steps
from elman.tasks.seq2seq.run import Seq2SeqRun
from elman.tasks.seq2seq.stream import DecoderStream


class Seq2SeqModel(NextStepSessions):
    """Transduction, and decoder sessions over a ``Seq2SeqRun``."""

    endpoints = ("transduce", "sessions")
    takes = "tokens"
    hidden_ids = (PAD_ID, UNK_ID)

    def __init__(self, name: str, run: Seq2SeqRun) -> None:
        super().__init__(name, run)
        # the run by a name of its own: ``Served.run`` also names the endpoint method
        self.trained, self.vocab, self.config = run, run.vocab, run.config

    def session_options(self, options: dict) -> dict:
        source = options.get("source")
        if not isinstance(source, str):
            raise RequestError(f"options.source: expected the source text, got {source!r}")
        self._source(source)
        rest = {k: v for k, v in options.items() if k != "source"}
        return top_k_option(rest) | {"source": source}

    def _source(self, text: str) -> torch.Tensor:
        try:
            return self.vocab.encode_source(text, self.config.max_source, "options.source")
        except ValueError as e:
            raise RequestError(str(e)) from None

    def open(self, options: dict) -> DecoderStream:
        return self.trained.open_stream(source=self._source(options["source"]))

    def restore(self, options: dict, data: bytes) -> DecoderStream:
        return self.trained.restore_stream(data)

    def parse(self, stream: DecoderStream, inputs, limits: Limits) -> Chunk:
        known = self.vocab.target.tokens
        unknown = sorted({t for t in inputs if t not in known})
        if unknown:
            raise RequestError(f"tokens: not in the target vocabulary: {unknown[:10]}")
        ids = ([EOS_ID] if stream.steps == 0 else []) + self.vocab.target.ids(inputs)
        if not inputs and stream.steps:
            raise RequestError("tokens: expected at least one step, got none")
        check_steps("tokens", len(ids), limits)
        return Chunk(torch.tensor(ids, dtype=torch.int64), ("tokens", len(ids)))

    def names(self) -> list[str]:
        return list(self.vocab.target.tokens)

    def parse_request(self, endpoint: str, body, limits: Limits):
        check_count("inputs", len(body.inputs), limits)
        if body.nbest > body.beam:
            raise RequestError(f"nbest: at most beam={body.beam} outputs, got {body.nbest}")
        for i, text in enumerate(body.inputs):
            try:
                self.vocab.encode_source(text, self.config.max_source, f"inputs[{i}]")
            except ValueError as e:
                raise RequestError(str(e)) from None
        return body

    def answer(self, endpoint: str, jobs: list) -> list[dict]:
        """The outputs of each ``transduce`` request: its n-best per input."""
        out = []
        decode = self.vocab.target.decode
        for body in jobs:  # beam settings differ between requests: one search each
            found = self.trained.transduce(body.inputs, body.beam, body.nbest, body.alpha)
            outputs = [
                [{"output": decode(h.tokens), "logprob": h.logprob} for h in hyps] for hyps in found
            ]
            out.append({"outputs": outputs})
        return out


__all__ = ["Seq2SeqModel"]
