"""Character and word language models: ``generate`` (token by token, so it can stream as
server-sent events) and sessions that read text and answer the next token's distribution."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from elman.data.tokenize import EOS_ID
from elman.decode import Sampling
from elman.serve.config import Limits
from elman.serve.served import Chunk, RequestError, Served, check_steps
from elman.tasks.lm.run import CharRun, LanguageRun, WordRun
from elman.tasks.streaming import check_together

DEFAULT_TOP_K = 5


def sampling_of(request) -> Sampling:
    try:
        return Sampling(request.temperature, request.top_k, request.top_p, request.seed)
    except ValueError as e:
        raise RequestError(str(e)) from None


def refuse_unused(request, fields: tuple[str, ...], task: str) -> None:
    """Generation fields a model does not read are an error, never silently dropped."""
    given = [f for f in fields if getattr(request, f) not in (None, "")]
    if given:
        raise RequestError(f"{', '.join(given)}: a {task} model does not read this; omit it")


def top_k_option(options: dict) -> dict:
    """Validated session options of a next-token stream: ``top_k`` only."""
    unknown = set(options) - {"top_k"}
    if unknown:
        raise RequestError(f"options: unknown option(s) {sorted(unknown)}; expected top_k")
    k = options.get("top_k", DEFAULT_TOP_K)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
        raise RequestError(f"options.top_k: expected an integer in [1, 1000], got {k!r}")
    return {"top_k": k}


class NextStepSessions(Served):
    """Sessions over the run's streams (``run.open_stream()``), answering the next step's
    top-k."""

    def session_options(self, options: dict) -> dict:
        return top_k_option(options)

    def open(self, options: dict) -> Any:
        return self.run.open_stream()

    def restore(self, options: dict, data: bytes) -> Any:
        return self.run.restore_stream(data)

    hidden_ids: tuple[int, ...] = ()  # never proposed as the next token

    def names(self) -> list[str]:
        """The output tokens, by id."""
        raise NotImplementedError

    def step(self, streams: list, chunks: list, options: list[dict]) -> list[dict]:
        check_together(streams, chunks)
        outs = type(streams[0]).feed_together(streams, chunks)
        names = self.names()
        replies = []
        for out, opts in zip(outs, options, strict=True):
            p = out[-1].exp()
            p[list(self.hidden_ids)] = 0
            top = p.topk(min(opts["top_k"], len(names)))
            pairs = zip(top.indices.tolist(), top.values.tolist(), strict=True)
            nxt = [{"token": names[i], "p": q} for i, q in pairs]
            replies.append({"next": nxt})
        return replies


class LanguageModel(NextStepSessions):
    """A character or word model (a ``LanguageRun``): generation and text sessions."""

    endpoints = ("generate", "sessions")
    takes = "text"
    streams_tokens = True
    run: LanguageRun

    def __init__(self, name: str, run: LanguageRun) -> None:
        super().__init__(name, run)
        self.hidden_ids = run.hidden_ids

    def names(self) -> list[str]:
        return self.run.names()

    def encode(self, text: str, first: bool, field: str = "text") -> list[int]:
        """Ids of ``text`` (``first``: the session's first step); errors name ``field``."""
        raise NotImplementedError

    def parse(self, stream, inputs, limits: Limits) -> Chunk:
        if not isinstance(inputs, str):
            raise RequestError(f"text: a {self.task} session reads text, got {inputs!r}")
        ids = self.encode(inputs, stream.steps == 0)
        check_steps("text", len(ids), limits)
        return Chunk(torch.tensor(ids, dtype=torch.int64), ("text", len(ids)))


class CharModel(LanguageModel):
    run: CharRun

    def encode(self, text: str, first: bool, field: str = "text") -> list[int]:
        try:
            return self.run.vocab.encode(text).tolist()
        except ValueError as e:
            raise RequestError(f"{field}: {e}") from None

    def generate(self, request, limits: Limits) -> Iterator[str]:
        refuse_unused(request, ("frames", "tokens"), self.task)
        _check_length(request.length, limits)
        if not request.prompt or len(request.prompt) > limits.steps:
            raise RequestError(
                f"prompt: expected 1 to {limits.steps} characters, got {len(request.prompt)}"
            )
        self.encode(request.prompt, True, "prompt")  # so errors come before the first token
        return self.run.generate(request.prompt, request.length, sampling_of(request))


class WordModel(LanguageModel):
    run: WordRun

    def encode(self, text: str, first: bool, field: str = "text") -> list[int]:
        ids = self.run.tokenizer.encode(text)
        return [EOS_ID, *ids] if first else ids  # a stream starts as a sentence does

    def generate(self, request, limits: Limits) -> Iterator[str]:
        refuse_unused(request, ("frames", "tokens"), self.task)
        _check_length(request.length, limits)
        if len(self.run.tokenizer.encode(request.prompt)) > limits.steps:
            raise RequestError(f"prompt: more than the limit of {limits.steps} tokens")
        return self.run.generate(request.prompt, request.length, sampling_of(request))


def _check_length(length: int, limits: Limits) -> None:
    if length > limits.generate:
        raise RequestError(
            f"length: {length} is over this server's generation limit of {limits.generate}"
        )


__all__ = [
    "CharModel",
    "LanguageModel",
    "NextStepSessions",
    "WordModel",
    "refuse_unused",
    "sampling_of",
]
