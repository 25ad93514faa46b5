"""Classifiers, taggers and seq2seq models: stateless requests, each batch of concurrent
requests run as one pass (one padded batch of every input they carry)."""

from __future__ import annotations

from pathlib import Path

import torch

from elman.data.tokenize import EOS_ID, PAD_ID, UNK_ID
from elman.serve.config import Limits
from elman.serve.language import NextStepSessions, top_k_option
from elman.serve.served import FLOAT32_MAX, Chunk, RequestError, Served, check_steps
from elman.tasks.classify import task as classify
from elman.tasks.seq2seq import task as seq2seq
from elman.tasks.streams import ClassifyStream, DecoderStream, feed_together
from elman.tasks.tag import task as tag


def check_count(field: str, count: int, limits: Limits) -> None:
    if count < 1:
        raise RequestError(f"{field}: expected at least one input, got none")
    if count > limits.batch:
        raise RequestError(f"{field}: {count} inputs is over this server's limit of {limits.batch}")


def one_of(body, fields: tuple[str, str], wanted: str) -> list:
    """The one field of ``fields`` a request gave; it must be ``wanted``."""
    given = [f for f in fields if getattr(body, f) is not None]
    if given != [wanted]:
        raise RequestError(f"this model reads `{wanted}`; the request gave {given or 'nothing'}")
    return getattr(body, wanted)


def split_back(rows: list, sizes: list[int]) -> list[list]:
    out, start = [], 0
    for n in sizes:
        out.append(rows[start : start + n])
        start += n
    return out


class ClassifyModel(Served):
    task = "classify"
    endpoints = ("classify",)

    def __init__(self, name: str, path: Path, which: str) -> None:
        self.classifier = classify.load(path, which)
        super().__init__(name, path, self.classifier.model, self.classifier.meta)
        try:
            ClassifyStream(self.classifier)
            self.takes = "text" if self.classifier.encoder.kind == "text" else "frames"
            self.endpoints = ("classify", "sessions")
        except ValueError as e:  # bidirectional, or the convolutional branch
            self.why = str(e)

    # ---- sessions: the class probabilities of the sequence so far ------------------------
    def open(self, options: dict) -> ClassifyStream:
        return ClassifyStream(self.classifier)

    def restore(self, options: dict, data: bytes) -> ClassifyStream:
        return ClassifyStream.from_bytes(self.classifier, data)

    def parse(self, stream: ClassifyStream, inputs, limits: Limits) -> Chunk:
        if self.takes == "text":
            x = torch.tensor(self.classifier.encoder.tokenizer.encode(inputs), dtype=torch.int64)
        else:
            try:
                x = torch.tensor(series_values(inputs, "frames"), dtype=torch.float32)
            except (TypeError, ValueError) as e:
                raise RequestError(f"frames: expected rows of numbers ({e})") from None
        check_steps(self.takes, len(x), limits)
        try:
            x = stream.inputs(x)  # shape and range, checked before the batch runs
        except ValueError as e:
            raise RequestError(f"{self.takes}: {e}") from None
        if self.takes == "frames":
            self.check_scaled("frames", x)
        return Chunk(x, (self.takes, tuple(x.shape)))

    def check_scaled(self, field: str, x: torch.Tensor) -> None:
        """Series values (T, C) the network can read: finite once scaled as its training
        data was (NaN marks a missing value; 1e308 overflows float32, 1e38 the scaling)."""
        net = self.classifier.model
        z = (x - net.scale_mean) / net.scale_std
        bad = torch.nonzero(torch.isinf(z) | (torch.isnan(z) & ~torch.isnan(x)))
        if len(bad):
            t, c = bad[0].tolist()
            raise RequestError(
                f"{field}: step {t}, channel {c}: the value is out of the model's range: scaled "
                f"as its training data was it is {float(z[t, c]):g}; the network reads float32"
            )

    def step(self, streams: list, chunks: list, options: list[dict]) -> list[dict]:
        return [self.labelled(probs[-1].tolist()) for probs in feed_together(streams, chunks)]

    def labelled(self, p: list[float]) -> dict:
        """The likeliest class and every class's probability."""
        names = self.classifier.classes
        label = names[max(range(len(p)), key=p.__getitem__)]
        return {"label": label, "probabilities": dict(zip(names, p, strict=True))}

    def details(self) -> dict:
        return {"classes": list(self.classifier.classes), "input": self.classifier.encoder.kind}

    def parse_request(self, endpoint: str, body, limits: Limits) -> list[torch.Tensor]:
        kind = self.classifier.encoder.kind
        inputs = one_of(body, ("texts", "series"), "texts" if kind == "text" else "series")
        check_count(kind, len(inputs), limits)
        if kind != "text":
            inputs = [series_values(x, f"series[{i}]") for i, x in enumerate(inputs)]
        try:
            encoded = self.classifier.encoder(inputs, "input")
        except ValueError as e:
            raise RequestError(str(e)) from None
        for i, x in enumerate(encoded):
            check_steps(f"input {i}", len(x), limits)
            if kind != "text":
                self.check_scaled(f"series[{i}]", x)
        return encoded

    def run(self, endpoint: str, jobs: list[list[torch.Tensor]]) -> list[dict]:
        every = [x for job in jobs for x in job]
        probs = classify.predict_logits(self.model, every).softmax(-1).tolist()
        rows = [self.labelled(p) for p in probs]
        return [{"predictions": part} for part in split_back(rows, [len(j) for j in jobs])]


def series_values(x, field: str):
    """Posted series values as the encoder takes them: null marks a missing value (NaN, as
    in files); a number past float32's range is refused here, naming it, since the network
    would read it as infinity."""
    if isinstance(x, list):
        return [series_values(v, field) for v in x]
    if x is None:
        return float("nan")
    if isinstance(x, int | float) and not abs(x) <= FLOAT32_MAX:
        raise RequestError(
            f"{field}: {x!r} is past float32's range ({FLOAT32_MAX:.3g}), which the network reads"
        )
    return x


class TagModel(Served):
    task = "tag"
    endpoints = ("tag",)

    def __init__(self, name: str, path: Path, which: str) -> None:
        model, self.vocab, meta = tag.load(path, which)
        super().__init__(name, path, model, meta)

    def details(self) -> dict:
        return {"tags": list(self.vocab.tags)}

    def parse_request(self, endpoint: str, body, limits: Limits) -> list[list[str]]:
        given = [f for f in ("sentences", "texts") if getattr(body, f) is not None]
        if len(given) != 1:
            raise RequestError(f"give one of `sentences` and `texts`; got {given or 'neither'}")
        sentences = body.sentences if given == ["sentences"] else [t.split() for t in body.texts]
        check_count(given[0], len(sentences), limits)
        for i, words in enumerate(sentences):
            check_steps(f"{given[0]}[{i}]", len(words), limits)
        return sentences

    def run(self, endpoint: str, jobs: list[list[list[str]]]) -> list[dict]:
        every = tag.tag(self.model, self.vocab, [s for job in jobs for s in job])
        return [{"tags": part} for part in split_back(every, [len(j) for j in jobs])]


class Seq2SeqModel(NextStepSessions):
    """Transduction, and decoder sessions: opened on a ``source``, fed target tokens, they
    answer the next target token's top-k."""

    task = "seq2seq"
    endpoints = ("transduce", "sessions")
    takes = "tokens"
    hidden_ids = (PAD_ID, UNK_ID)

    def __init__(self, name: str, path: Path, which: str) -> None:
        model, self.vocab, self.config, meta = seq2seq.load(path, which)
        super().__init__(name, path, model, meta)

    def details(self) -> dict:
        return {"max_source": self.config.max_source, "max_target": self.config.max_target}

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
        return DecoderStream(self.model, self._source(options["source"]))

    def restore(self, options: dict, data: bytes) -> DecoderStream:
        return DecoderStream.from_bytes(self.model, data)

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

    def run(self, endpoint: str, jobs: list) -> list[dict]:
        out = []
        for body in jobs:  # beam settings differ between requests: one search each
            found = seq2seq.transduce(
                self.model, self.vocab, body.inputs, self.config, body.beam, body.nbest, body.alpha
            )
            decode = self.vocab.target.decode
            out.append(
                {
                    "outputs": [
                        [{"output": decode(h.tokens), "logprob": h.logprob} for h in hyps]
                        for hyps in found
                    ]
                }
            )
        return out


__all__ = ["ClassifyModel", "Seq2SeqModel", "TagModel"]
