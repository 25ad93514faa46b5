"""Character and word language models: ``generate`` (token by token, so it can stream as
server-sent events) and sessions that read text and answer the next token's distribution."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from elman.data.tokenize import EOS_ID, PAD_ID, UNK_ID
from elman.decode import Sampling
from elman.serve.config import Limits
from elman.serve.served import Chunk, RequestError, Served, check_steps
from elman.tasks.lm import charlm, wordlm
from elman.tasks.streams import Stream, feed_together

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
    """Sessions over an ``elman.tasks.streams.Stream``, answering the next step's top-k."""

    def session_options(self, options: dict) -> dict:
        return top_k_option(options)

    def open(self, options: dict) -> Stream:
        return Stream(self.model)

    def restore(self, options: dict, data: bytes) -> Stream:
        return Stream.from_bytes(self.model, data)

    hidden_ids: tuple[int, ...] = ()  # never proposed as the next token

    def names(self) -> list[str]:
        """The output tokens, by id."""
        raise NotImplementedError

    def step(self, streams: list[Stream], chunks: list, options: list[dict]) -> list[dict]:
        outs = feed_together(streams, chunks)
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
    endpoints = ("generate", "sessions")
    takes = "text"
    streams_tokens = True

    def details(self) -> dict:
        return {"vocabulary": len(self.names())}

    def encode(self, text: str, first: bool, field: str = "text") -> list[int]:
        """Ids of ``text`` (``first``: the session's first step); errors name ``field``."""
        raise NotImplementedError

    def parse(self, stream: Stream, inputs, limits: Limits) -> Chunk:
        if not isinstance(inputs, str):
            raise RequestError(f"text: a {self.task} session reads text, got {inputs!r}")
        ids = self.encode(inputs, stream.steps == 0)
        check_steps("text", len(ids), limits)
        return Chunk(torch.tensor(ids, dtype=torch.int64), ("text", len(ids)))


class CharModel(LanguageModel):
    task = "charlm"

    def __init__(self, name: str, path: Path, which: str) -> None:
        model, self.vocab, meta = charlm.load(path, which)
        super().__init__(name, path, model, meta)

    def names(self) -> list[str]:
        return list(self.vocab.chars)

    def encode(self, text: str, first: bool, field: str = "text") -> list[int]:
        try:
            return self.vocab.encode(text).tolist()
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
        return charlm.generate(
            self.model, self.vocab, request.prompt, request.length, sampling_of(request)
        )


class WordModel(LanguageModel):
    task = "wordlm"
    hidden_ids = (PAD_ID, UNK_ID)

    def __init__(self, name: str, path: Path, which: str) -> None:
        model, self.tokenizer, meta = wordlm.load(path, which)
        super().__init__(name, path, model, meta)

    def names(self) -> list[str]:
        return list(self.tokenizer.tokens)

    def encode(self, text: str, first: bool, field: str = "text") -> list[int]:
        ids = self.tokenizer.encode(text)
        return [EOS_ID, *ids] if first else ids  # a stream starts as a sentence does

    def generate(self, request, limits: Limits) -> Iterator[str]:
        refuse_unused(request, ("frames", "tokens"), self.task)
        _check_length(request.length, limits)
        if len(self.tokenizer.encode(request.prompt)) > limits.steps:
            raise RequestError(f"prompt: more than the limit of {limits.steps} tokens")
        return wordlm.generate(
            self.model, self.tokenizer, request.prompt, request.length, sampling_of(request)
        )


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
