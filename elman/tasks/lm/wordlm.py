"""Word-level language modeling: next-word prediction, autocomplete, perplexity, generation.

Text is a list of documents, each a list of sentences (lines); every sentence ends with
``<eos>``, which the model predicts like any word, and the state resets where a document
begins. Training runs truncated BPTT over the training documents laid end to end
(``elman.tasks.lm.model``); perplexity is exp(mean nats per token, ``<eos>`` included) with the
state carried through the held-out documents. The vocabulary comes from the training split
only; rarer words than ``min_freq`` map to ``<unk>`` (and count as such in perplexity).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from elman.data.brown import read_brown
from elman.data.text import read_text
from elman.data.tokenize import EOS_ID, PAD_ID, UNK_ID, Tokenizer
from elman.decode import Sampling, beam_search, next_token
from elman.fields import option
from elman.nn import CELLS
from elman.nn.checks import check_fields, check_positive_int
from elman.tasks.awd import Regularizers
from elman.tasks.lm.finetune import check_same, copy_all, source_run
from elman.tasks.lm.model import RecurrentLM, StreamLMTask, arguments, evaluate_ids, starts_tensor
from elman.tasks.rundir import fit_task, resume_run
from elman.train import TrainConfig, seed_everything
from elman.train.checkpoint import CheckpointError

NAME = "wordlm"
TOKENIZERS = ("auto", "word", "whitespace", "bpe")
Documents = list[list[str]]


@dataclass(frozen=True, kw_only=True)
class WordLMConfig(Regularizers):
    """The model, its vocabulary and how text is fed to it. Every field with help is also an
    option of `elman train wordlm` (``elman.fields``); the defaults are the recommended model."""

    cell: str = option("lstm", f"recurrent cell: {', '.join(CELLS)}", choices=CELLS)
    embedding: int = option(256, "word embedding size")
    hidden: int = option(256, "hidden units per layer")
    layers: int = option(2, "stacked recurrent layers")
    dropout: float = option(0.3, "dropout between layers and before the output layer, in [0, 1)")
    embed_dropout: float = option(0.1, "dropout on the word embeddings, in [0, 1)")
    reverse: bool = option(
        False, "read each document backwards (a backward model, for bidirectional fine-tuning)"
    )
    # a projection maps hidden -> embedding when the two sizes differ
    tie: bool = option(True, "share the input embedding with the output layer")
    # word: regex words and punctuation; whitespace: pre-tokenized text; bpe: subwords;
    # auto: whitespace for the Brown corpus, word otherwise
    tokenizer: str = option("auto", f"how text splits into tokens: {', '.join(TOKENIZERS)}")
    lower: bool = option(True, "lower-case the text")
    min_freq: int = option(2, "words seen fewer times in training become <unk>")
    max_vocab: int | None = option(None, "largest vocabulary (BPE: its size; default 8000 there)")
    batch_size: int = option(
        32, "parallel rows of text per batch (split across processes under torchrun)"
    )
    seq_len: int = option(35, "words per chunk: how far back gradients flow (the state flows on)")
    valid_fraction: float = option(0.1, "held-out tail of the lines when no --valid file is given")
    # the vocabulary is ranked by frequency, so the first cluster holds the common words
    cutoffs: tuple[int, ...] = option(
        (),
        "adaptive softmax id cut-offs, e.g. --cutoffs 2000 10000 (needs --no-tie); "
        "much faster with large vocabularies",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "cutoffs", tuple(self.cutoffs))  # JSON gives a list
        super().__post_init__()
        check_cutoffs(self.cutoffs, self.tie)
        check_fields(
            self,
            {"cell": CELLS, "tokenizer": TOKENIZERS},
            ("embedding", "hidden", "layers", "min_freq", "batch_size", "seq_len"),
            ("max_vocab",),
            ("dropout", "embed_dropout"),
            ("tie", "lower", "reverse"),
        )
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction!r}")


# ---- data ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    """Documents (lists of sentences) per split, and where they came from."""

    train: Documents
    valid: Documents
    test: Documents
    source: dict
    pretokenized: bool = False


def brown_corpus(folder: str | Path) -> Corpus:
    """The Brown corpus without its tags, split by file (``Brown.split``: 414/45/41 files);
    each file is a document of whitespace-joined sentences."""
    brown = read_brown(folder)
    parts = brown.split()

    def docs(files: list[str]) -> Documents:
        return [[" ".join(w for w, _ in s) for s in brown.files[f]] for f in files]

    text = json.dumps(parts, sort_keys=True) + "".join(
        line for f in sorted(brown.files) for line in docs([f])[0]
    )
    source = {"kind": "brown", "paths": [str(Path(folder).resolve())], "sha256": _sha(text)}
    return Corpus(docs(parts["train"]), docs(parts["valid"]), docs(parts["test"]), source, True)


def text_corpus(
    train: Sequence[str | Path],
    valid: str | Path | None = None,
    test: str | Path | None = None,
    valid_fraction: float = 0.1,
) -> Corpus:
    """UTF-8 files, one sentence per line (blank lines skipped), each file a document.
    Without ``valid`` the last ``valid_fraction`` of the training lines is held out."""
    if not train:
        raise ValueError("train: expected at least one text file")
    docs = [_lines(p) for p in train]
    if valid is None:
        total = sum(len(d) for d in docs)
        keep = int(total * (1 - valid_fraction))
        flat = [(i, line) for i, d in enumerate(docs) for line in d]
        if keep < 1 or keep >= total:
            raise ValueError(f"too few lines ({total}) to hold out {valid_fraction:.0%} of them")
        head, tail = flat[:keep], flat[keep:]
        docs, held = _regroup(head), _regroup(tail)
    else:
        held = [_lines(valid)]
    tests = [_lines(test)] if test is not None else []
    paths = [str(Path(p).resolve()) for p in [*train, *(x for x in (valid, test) if x)]]
    digest = _sha(json.dumps([docs, held, tests]))
    return Corpus(
        docs,
        held,
        tests,
        {
            "kind": "text",
            "paths": paths,
            "sha256": digest,
            "valid": valid is not None,
            "test": test is not None,
        },
    )


def _lines(path: str | Path) -> list[str]:
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


def _regroup(pairs: list[tuple[int, str]]) -> Documents:
    out: dict[int, list[str]] = {}
    for i, line in pairs:
        out.setdefault(i, []).append(line)
    return list(out.values())


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fit_tokenizer(corpus: Corpus, config: WordLMConfig) -> Tokenizer:
    kind = config.tokenizer
    if kind == "auto":
        kind = "whitespace" if corpus.pretokenized else "word"
    lines = [line for doc in corpus.train for line in doc]
    return Tokenizer.fit(lines, kind, config.min_freq, config.max_vocab, config.lower)


def encode_documents(
    tokenizer: Tokenizer, docs: Documents, reverse: bool = False
) -> tuple[Tensor, Tensor]:
    """One id stream (every sentence + ``<eos>``) and the positions where documents start;
    ``reverse``: each document's ids from its last to its first (a backward model's view)."""
    ids: list[int] = []
    starts = []
    for doc in docs:
        starts.append(len(ids))
        these = [i for line in doc for i in tokenizer.encode(line, eos=True)]
        ids += these[::-1] if reverse else these
    return torch.tensor(ids, dtype=torch.int64), starts_tensor(starts[1:])


def check_cutoffs(cutoffs: tuple, tie: bool) -> None:
    ok = all(isinstance(c, int) and not isinstance(c, bool) for c in cutoffs)
    if not ok or any(a >= b for a, b in zip((0, *cutoffs), cutoffs, strict=False)):
        raise ValueError(f"cutoffs must be increasing positive integers, got {cutoffs!r}")
    if cutoffs and tie:
        raise ValueError("cutoffs (an adaptive softmax) need tie=False (--no-tie)")


# ---- model and task --------------------------------------------------------------------
def build_model(vocab_size: int, config: WordLMConfig) -> RecurrentLM:
    return RecurrentLM(vocab_size, *arguments(config))


class WordLMTask(StreamLMTask):
    """The trainer's view of word language modeling (see ``elman.train.Task``)."""

    name = NAME

    def __init__(
        self,
        corpus: Corpus,
        config: WordLMConfig,
        seed: int = 0,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.config, self.corpus = config, corpus
        self.init_from: dict | None = None  # the run it started from, if any
        self.tokenizer = tokenizer or fit_tokenizer(corpus, config)
        train_ids, train_starts = encode_documents(self.tokenizer, corpus.train, config.reverse)
        valid_ids, valid_starts = encode_documents(self.tokenizer, corpus.valid, config.reverse)
        super().__init__(
            build_model(len(self.tokenizer), config),
            train_ids,
            valid_ids,
            config.batch_size,
            config.seq_len,
            seed,
            train_starts,
            valid_starts,
        )

    def metrics(self, nats: float, split: str) -> dict[str, float]:
        return {f"{split}_perplexity": math.exp(min(nats, 700.0))}

    def describe(self) -> dict:
        return {
            "model": asdict(self.config),
            "tokenizer": self.tokenizer.to_json(),
            "source": self.corpus.source,
            "seed": self.seed,
            "init_from": self.init_from,
        }


def train(
    corpus: Corpus,
    config: WordLMConfig,
    train_config: TrainConfig,
    out: str | Path,
    until: int | None = None,
    epochs: int | None = None,
    init_from: str | Path | None = None,
) -> dict[str, float]:
    """Train a word model on ``corpus`` into ``out``; returns the last validation metrics.
    ``init_from``: a word LM run to start from (its vocabulary and weights; ``config`` must
    give its model, ``elman.tasks.lm.finetune.SHAPE``)."""
    seed_everything(train_config.seed)
    if init_from is None:
        task = WordLMTask(corpus, config, train_config.seed)
    else:
        run = source_run(init_from, NAME)
        check_same(config, run)
        task = WordLMTask(corpus, config, train_config.seed, run.tokenizer)
        task.init_from = copy_all(task.model, run)
    return fit_task(task, train_config, out, until, epochs)


def corpus_from_source(source: dict) -> Corpus:
    """Re-read a run's corpus from its recorded source; it must be unchanged."""
    if source["kind"] == "brown":
        corpus = brown_corpus(source["paths"][0])
    else:
        paths = list(source["paths"])
        test = paths.pop() if source.get("test") else None
        valid = paths.pop() if source.get("valid") else None
        corpus = text_corpus(paths, valid, test)
    if corpus.source["sha256"] != source["sha256"]:
        raise CheckpointError(
            f"the training data ({', '.join(source['paths'])}) changed since this run "
            "started; the run needs the same data"
        )
    return corpus


def _task_from_meta(meta: dict) -> WordLMTask:
    info = meta["task_config"]
    corpus = corpus_from_source(info["source"])
    config = WordLMConfig(**info["model"])
    task = WordLMTask(corpus, config, info["seed"], Tokenizer.from_json(info["tokenizer"]))
    task.init_from = info.get("init_from")
    return task


def resume(out: str | Path, steps: int | None = None, until: int | None = None) -> dict[str, float]:
    """Continue the run in ``out`` exactly where its last checkpoint left it."""
    return resume_run(out, NAME, _task_from_meta, steps, until)


def model_from(info: dict) -> tuple[RecurrentLM, Tokenizer]:
    """The (untrained) model and tokenizer a checkpoint header's ``task_config`` describes."""
    tokenizer = Tokenizer.from_json(info["tokenizer"])
    return build_model(len(tokenizer), WordLMConfig(**info["model"])), tokenizer


def held_out(corpus: Corpus, split: str | None = None) -> tuple[Documents, str]:
    """The "valid" or "test" documents of ``corpus`` and how to name them; ``split`` None: the
    test documents if there are any, else the validation ones."""
    if split not in (None, "valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    what = f"{split} split"
    if split is None:
        split, what = ("test", "test split") if corpus.test else ("valid", "valid split")
        if not corpus.test:
            what += " (the run has no test split)"
    docs = getattr(corpus, split)
    if not docs:
        raise ValueError(f"this run's corpus has no {split} split; pass a text file to score")
    return docs, what


def score_documents(
    model: RecurrentLM, tokenizer: Tokenizer, docs: Documents, reverse: bool = False
) -> dict:
    """Nats per token, perplexity, token count and ``<unk>`` share of ``docs`` (read
    backwards by a ``reverse`` model)."""
    ids, starts = encode_documents(tokenizer, docs, reverse)
    if ids.numel() < 2:
        raise ValueError("text to score: expected at least two tokens")
    nats = evaluate_ids(model, ids, doc_starts=starts)
    unk = float((ids == UNK_ID).float().mean())
    return {
        "nats_per_token": nats,
        "perplexity": math.exp(nats),
        "tokens": ids.numel(),
        "unk_rate": unk,
    }


# ---- using a trained model -------------------------------------------------------------
def _context(tokenizer: Tokenizer, prefix: str) -> Tensor:
    """The ids a model reads before continuing ``prefix``: a sentence start, then the words."""
    return torch.tensor([[EOS_ID, *tokenizer.encode(prefix)]], dtype=torch.int64)


def complete(
    model: RecurrentLM, tokenizer: Tokenizer, prefix: str, k: int = 10
) -> list[tuple[str, float]]:
    """The ``k`` likeliest next tokens after ``prefix`` with their probabilities (``<pad>``
    and ``<unk>`` left out of the ranking; ``<eos>`` means the sentence ends)."""
    check_positive_int("k", k)
    model.eval()
    with torch.no_grad():
        logits, _ = model(_context(tokenizer, prefix))
    probs = logits[0, -1].softmax(-1)
    probs[[PAD_ID, UNK_ID]] = 0
    top = probs.topk(min(k, len(tokenizer) - 2))
    return [(tokenizer.tokens[i], float(p)) for p, i in zip(top.values, top.indices, strict=True)]


def finish(
    model: RecurrentLM,
    tokenizer: Tokenizer,
    prefix: str,
    beam: int = 5,
    nbest: int = 3,
    max_len: int = 30,
    alpha: float = 0.0,
) -> list[tuple[str, float]]:
    """The ``nbest`` likeliest endings of the sentence begun by ``prefix`` (beam search up
    to ``<eos>``; ``<pad>``/``<unk>`` never proposed), with their log-probabilities; an
    ending that reaches ``max_len`` words unfinished is marked with a trailing " ..."."""
    context = _context(tokenizer, prefix)

    def step(tokens: Tensor, state):
        logits, state = model(tokens[:, None], state)
        logits = logits[:, 0].clone()
        logits[:, [PAD_ID, UNK_ID]] = float("-inf")
        return logits, state, None

    model.eval()
    with torch.no_grad():
        state = model(context[:, :-1])[1] if context.shape[1] > 1 else None
        found = beam_search(
            step, _select_rows, state, 1, int(context[0, -1]), EOS_ID, beam, max_len, alpha, nbest
        )[0]
    before = tokenizer.decode(context[0, 1:].tolist())
    return [
        (
            tokenizer.decode([*context[0, 1:].tolist(), *h.tokens])[len(before) :]
            + ("" if h.finished else " ..."),
            h.logprob,
        )
        for h in found
    ]


def _select_rows(state, rows: Tensor):
    """Rows of a recurrent state ((L, N, H) tensors; None before the first step)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(t.index_select(1, rows) for t in state)
    return state.index_select(1, rows)


def generate(
    model: RecurrentLM,
    tokenizer: Tokenizer,
    prompt: str,
    length: int,
    sampling: Sampling | None = None,
) -> Iterator[str]:
    """Text following ``prompt``, a token at a time (with its leading space; ``<eos>`` comes
    out as a line break). ``<pad>`` and ``<unk>`` are never sampled."""
    check_positive_int("length", length)
    sampling = sampling or Sampling()
    generator = sampling.generator()
    sentence = tokenizer.encode(prompt)  # decoding the sentence so far places the spaces
    model.eval()
    with torch.no_grad():
        logits, state = model(_context(tokenizer, prompt))
        for _ in range(length):
            last = logits[:, -1].clone()
            last[:, [PAD_ID, UNK_ID]] = float("-inf")
            token = next_token(last, sampling, generator)
            if int(token) == EOS_ID:
                sentence = []
                yield "\n"
            else:
                before = tokenizer.decode(sentence)
                sentence.append(int(token))
                yield tokenizer.decode(sentence)[len(before) :]
            logits, state = model(token[:, None], state)


__all__ = [
    "Corpus",
    "WordLMConfig",
    "WordLMTask",
    "brown_corpus",
    "complete",
    "finish",
    "generate",
    "held_out",
    "model_from",
    "resume",
    "score_documents",
    "text_corpus",
    "train",
]
