"""Word LM, POS tagging and sentiment classification on real corpora, each beside a baseline.

Data (../shared/data): the Brown corpus split by file, stratified by genre (414/45/41 files:
the 9th and 10th of every ten files of a genre go to validation and test), and the UCI
sentiment sentences (3,000, pooled, stratified 10-fold cross-validation).

- wordlm: test perplexity of a word LSTM on Brown (lower-cased, words seen fewer than
  ``--min-freq`` times in training -> <unk>, <eos> after every sentence and counted), within a
  wall-clock budget; an adaptive softmax output layer (cut-offs 2,000 and 10,000) makes a
  step several times cheaper than a full softmax over the ~18k words. Target <= 250.
  Baseline in the same run: an interpolated bigram model (add-k bigram + unigram) on the same
  vocabulary and split (``ngram_perplexity``).
- tag: token accuracy of a BiLSTM-CRF with character CNN on Brown's tags (``-tl``, ``-hl``,
  ``-nc`` stripped; "+" compounds kept whole, 232 tags), within a budget. Target >= 96.5%.
  Baseline in the same run: each word's most frequent training tag (unknown words: the most
  frequent tag overall).
- sentiment: mean 10-fold accuracy of a BiLSTM classifier trained from scratch (max pooling,
  word dropout 0.4, embedding dropout 0.6, AdamW with weight decay 0.1, best of 30 epochs on
  a held-out 10%), beside a bag-of-words (unigram + bigram) logistic regression on the same
  folds (scikit-learn). Target >= 83%.

    python bench/text_tasks.py --tasks wordlm tag sentiment --minutes 20
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import torch
from harness import markdown_table, metadata, summary, write_results

from elman.data.labelled import read_sentiment, stratified_folds
from elman.tasks.classify import task as classify
from elman.tasks.lm import wordlm
from elman.tasks.registry import load_run
from elman.tasks.tag import task as tag
from elman.train import TrainConfig, Trainer, seed_everything

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TARGETS = {"wordlm": 250.0, "tag": 0.965, "sentiment": 0.83}


def ngram_perplexity(
    train: torch.Tensor, test: torch.Tensor, vocab: int, lam: float = 0.7, k: float = 0.01
) -> float:
    """Perplexity of an interpolated bigram model p = λ p_bigram(add-k) + (1-λ) p_unigram on
    ``test`` ids, fitted on ``train`` ids (same vocabulary as the LSTM)."""
    uni = torch.bincount(train, minlength=vocab).double() + 1
    uni = uni / uni.sum()
    pairs = Counter(zip(train[:-1].tolist(), train[1:].tolist(), strict=True))
    left = torch.bincount(train[:-1], minlength=vocab).double()
    total = 0.0
    for a, b in zip(test[:-1].tolist(), test[1:].tolist(), strict=True):
        bigram = (pairs.get((a, b), 0) + k) / (left[a].item() + k * vocab)
        total -= math.log(lam * bigram + (1 - lam) * uni[b].item())
    return math.exp(total / (test.numel() - 1))


# --wordlm-awd: the AWD-LSTM regularisers (issue 23's row; target <= 140), with Adam rather
# than NT-ASGD, whose averaging pays off over hundreds of epochs, not a 20-minute budget
AWD = dict(
    dropout=0.4,
    embed_dropout=0.3,
    token_dropout=0.1,
    weight_dropout=0.3,
    locked_dropout=True,
    ar=2.0,
    tar=1.0,
)
AWD_TARGET = 140.0


def run_wordlm(args: argparse.Namespace) -> list[dict]:
    corpus = wordlm.brown_corpus(DATA / "brown")
    regularise = AWD if args.wordlm_awd else {"dropout": 0.4, "embed_dropout": 0.1}
    config = wordlm.WordLMConfig(
        hidden=args.hidden,
        embedding=args.hidden,
        layers=2,
        **regularise,
        tie=False,
        cutoffs=(2000, 10000),
        min_freq=args.min_freq,
        batch_size=32,
        seq_len=35,
    )
    train = TrainConfig(
        steps=10**6,
        time_limit=args.minutes * 60,
        anneal_by_time=True,
        lr=2e-3,
        warmup=100,
        clip_norm=0.5,
        eval_every=400,
        progress=False,
    )
    out = Path(args.runs) / "wordlm"
    seed_everything(0)
    task = wordlm.WordLMTask(corpus, config, 0)
    start = time.perf_counter()
    Trainer(task, train, out).fit()
    test = load_run(out).evaluate(split="test")
    tok = task.tokenizer
    train_ids, _ = wordlm.encode_documents(tok, corpus.train)
    test_ids, _ = wordlm.encode_documents(tok, corpus.test)
    baseline = ngram_perplexity(train_ids, test_ids, len(tok))
    model = load_run(out).model
    ranked = wordlm.complete(model, tok, "The jury said that the", 5)
    target = AWD_TARGET if args.wordlm_awd else TARGETS["wordlm"]
    return [
        {
            "name": f"wordlm {'awd-' if args.wordlm_awd else ''}lstm 2x{args.hidden} (Brown test)",
            "metric": "test_perplexity",
            "value": round(test["perplexity"], 2),
            "target": target,
            "better": "lower",
            "met": test["perplexity"] <= target,
            "baseline": {"interpolated bigram, same vocabulary": round(baseline, 2)},
            "vocab": len(tok),
            "test_tokens": test["tokens"],
            "test_unk_rate": round(test["unk_rate"], 4),
            "eos_per_sentence": True,
            "seconds": round(time.perf_counter() - start),
            "config": asdict(config),
            "example": {"The jury said that the": ranked},
        }
    ]


def run_tag(args: argparse.Namespace) -> list[dict]:
    source = {"kind": "brown", "path": str(DATA / "brown")}
    config = tag.TagConfig(hidden=args.tag_hidden)
    # A step budget (``--tag-steps``) makes the run's result independent of the machine's load.
    by_time = not args.tag_steps
    train = TrainConfig(
        steps=10**6 if by_time else args.tag_steps,
        time_limit=args.minutes * 60 if by_time else None,
        anneal_by_time=by_time,
        lr=2e-3,
        clip_norm=5.0,
        eval_every=1000,
        progress=False,
    )
    out = Path(args.runs) / "tag"
    start, cpu = time.perf_counter(), time.process_time()
    tag.train(source, config, train, out)
    result = load_run(out).evaluate(split="test")
    train_set, _, test_set = tag.load_source(source)
    return [
        {
            "name": f"tag bilstm-crf {args.tag_hidden} + char-cnn (Brown test)",
            "metric": "token_accuracy",
            "value": round(result["accuracy"], 4),
            "target": TARGETS["tag"],
            "better": "higher",
            "met": result["accuracy"] >= TARGETS["tag"],
            "unseen_accuracy": round(result["unseen_accuracy"], 4),
            "unseen_tokens": result["unseen_tokens"],
            "tokens": result["tokens"],
            "baseline": {
                "most frequent tag per word": round(most_frequent_tag(train_set, test_set), 4)
            },
            "steps": train.steps if not by_time else None,
            "seconds": round(time.perf_counter() - start),
            "cpu_minutes": round((time.process_time() - cpu) / 60, 1),
            "config": asdict(config),
        }
    ]


def most_frequent_tag(train_set, test_set) -> float:
    counts: dict[str, Counter] = {}
    overall: Counter = Counter()
    for sentence in train_set:
        for word, t in sentence:
            counts.setdefault(word.lower(), Counter())[t] += 1
            overall[t] += 1
    fallback = overall.most_common(1)[0][0]
    pairs = [(w.lower(), t) for s in test_set for w, t in s]
    right = sum(
        (counts[w].most_common(1)[0][0] if w in counts else fallback) == t for w, t in pairs
    )
    return right / len(pairs)


def run_sentiment(args: argparse.Namespace) -> list[dict]:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    data = read_sentiment(DATA / "sentiment")
    folds = stratified_folds(data.labels, 10, seed=0)
    # Heavy regularisation pays on 2,700 sentences (10-fold, no word/embedding dropout: 0.754;
    # 0.2/0.3: 0.774; 0.3/0.5 with 20 epochs: 0.792; 0.4/0.6 with 30: 0.797, and with AdamW's
    # weight decay 0.1: 0.807); bpe (2,000) instead of words: 0.759; a bag of hashed 1-2-grams
    # trained jointly beside the RNN, its logits added (fastText-style): 0.808, so not kept.
    config = classify.ClassifyConfig(
        hidden=64,
        embedding=64,
        pooling="max",
        dropout=0.5,
        embed_dropout=0.6,
        word_dropout=0.4,
        min_freq=1,
        batch_size=32,
    )
    ours, theirs = [], []
    start = time.perf_counter()
    for k, held in enumerate(folds):
        test = data.subset(held)
        held_set = set(held)
        rest = data.subset([i for i in range(len(data)) if i not in held_set])
        source = {"kind": "given"}
        train_set, valid_set = classify_split(rest)
        seed_everything(k)
        task = classify.ClassifyTask(train_set, valid_set, config, k, source=source)
        steps = args.sentiment_epochs * len(task.batches(0))
        train = TrainConfig(
            steps=steps,
            optimizer="adamw",
            lr=2e-3,
            weight_decay=0.1,
            eval_every=len(task.batches(0)),
            progress=False,
        )
        Trainer(task, train, Path(args.runs) / f"sentiment{k}").fit()
        model = load_run(Path(args.runs) / f"sentiment{k}")
        ours.append(model.scores(test)["accuracy"])
        vec = CountVectorizer(ngram_range=(1, 2), lowercase=True)
        x_train = vec.fit_transform(rest.inputs)
        lr = LogisticRegression(max_iter=2000, C=1.0).fit(x_train, rest.labels)
        theirs.append(float((lr.predict(vec.transform(test.inputs)) == list(test.labels)).mean()))
        print(f"fold {k}: ours {ours[-1]:.4f}  bag-of-words LR {theirs[-1]:.4f}", flush=True)
    mean = sum(ours) / len(ours)
    std = (sum((a - mean) ** 2 for a in ours) / (len(ours) - 1)) ** 0.5
    base = sum(theirs) / len(theirs)
    return [
        {
            "name": "sentiment bilstm-max (UCI, 10-fold)",
            "metric": "cv_accuracy",
            "value": round(mean, 4),
            "std": round(std, 4),
            "folds": [round(a, 4) for a in ours],
            "target": TARGETS["sentiment"],
            "better": "higher",
            "met": mean >= TARGETS["sentiment"],
            "baseline": {"bag-of-words logistic regression": round(base, 4)},
            "baseline_folds": [round(a, 4) for a in theirs],
            "epochs": args.sentiment_epochs,
            "seconds": round(time.perf_counter() - start),
            "config": asdict(config),
        }
    ]


def classify_split(rest):
    """A stratified 10% of the training folds for validation (best-epoch choice)."""
    from elman.data.labelled import stratified_holdout

    kept, held = stratified_holdout(rest.labels, 0.1, seed=0)
    return rest.subset(kept), rest.subset(held)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--tasks",
        nargs="+",
        default=["wordlm", "tag", "sentiment"],
        choices=["wordlm", "tag", "sentiment"],
    )
    p.add_argument("--minutes", type=float, default=20, help="budget per model (wordlm, tag)")
    p.add_argument("--hidden", type=int, default=256, help="wordlm width")
    p.add_argument("--min-freq", type=int, default=3, help="wordlm: rarer words -> <unk>")
    p.add_argument(
        "--wordlm-awd", action="store_true", help="wordlm: with the AWD regularisers (``AWD``)"
    )
    p.add_argument("--tag-hidden", type=int, default=128)
    p.add_argument(
        "--tag-steps",
        type=int,
        default=22000,
        help="tag: the step budget (0: --minutes of wall time instead); 22,000 steps reached "
        "97.0%% here (20 wall-minutes: 96.2%%)",
    )
    p.add_argument("--sentiment-epochs", type=int, default=30)
    p.add_argument("--name", default="text_tasks")
    p.add_argument("--runs", default="bench/runs/text")
    args = p.parse_args()
    meta = metadata(
        "text_tasks",
        f"{args.minutes:g} min wall per model (wordlm"
        + (f"; tag: {args.tag_steps} steps" if args.tag_steps else ", tag")
        + "); "
        f"{args.sentiment_epochs} epochs per fold (sentiment)",
        "Brown (split by file, 414/45/41), UCI sentiment (10-fold)",
    )
    runners = {"wordlm": run_wordlm, "tag": run_tag, "sentiment": run_sentiment}
    rows: list[dict] = []
    for name in args.tasks:
        rows += runners[name](args)
        print(rows[-1]["name"], rows[-1]["value"], rows[-1]["baseline"], flush=True)
        head = ["name", "metric", "value", "target", "met", "baseline"]
        body = [
            [
                r["name"],
                r["metric"],
                str(r["value"]),
                str(r["target"]),
                "yes" if r["met"] else "NO",
                "; ".join(f"{k} {v}" for k, v in r["baseline"].items()),
            ]
            for r in rows
        ]
        md = (
            "\n".join(
                [
                    f"# Text tasks: {meta['budget']}",
                    "",
                    f"{meta['machine']}; {meta['date']}; {meta['data']}.",
                    "",
                    *markdown_table(head, body),
                    "",
                    summary(rows, len(args.tasks)),
                ]
            )
            + "\n"
        )
        write_results(Path("bench/results"), args.name, meta, rows, len(args.tasks), md)
    print(summary(rows, len(args.tasks)))


if __name__ == "__main__":
    sys.exit(main())
