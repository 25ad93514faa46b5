"""Brown POS tagging with contextual string embeddings (Akbik, Blythe & Vollgraf 2018): the
tagger of bench/text_tasks.py (BiLSTM-CRF 128 with word embeddings and a character CNN, the
same Brown split by file 414/45/41, tags normalised alike, token and unseen-word accuracy on
the test files) reading, beside its own features, a pretrained forward and backward character
LM's states at each word's ends (``elman.tasks.tag.strings``), the LMs frozen.

The from-scratch tagger is quoted from bench/results/text_tasks_tag*.json (97.01% / 81.7%
unseen after 22,000 steps; 96.22% / 80.35% after 20 wall-minutes), or with ``--scratch``
re-run here under the same budget. The LMs' features are computed once before training (their
time is reported apart and not charged to the tagger's budget) and kept in memory in float16:
(H_f + H_b) x 2 bytes per training and validation token, ~1.04M tokens, so ~1 GB for two
256-wide LMs and ~4 GB for two 1024-wide ones.

    python bench/tag_strings.py --forward LM_FWD --backward LM_BWD --steps 22000
    python bench/tag_strings.py --forward LM_FWD --backward LM_BWD --minutes 20 --scratch

(``--steps 22000`` is the budget of the quoted 97.01% run, ``--minutes 20`` of the 96.22% one;
``--threads 1``, the default, is what both used.)

Smoke runs: ``--subset K`` reads only the first K files of each genre (K >= 10 keeps a
validation and a test file per genre), ``--results DIR --name NAME`` writes elsewhere.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

import torch
from harness import markdown_table, metadata, write_results

from elman.tasks.registry import load_run
from elman.tasks.tag import task as tag
from elman.tasks.tag.lms import load_strings
from elman.train import TrainConfig, Trainer, seed_everything

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "brown"
QUOTED = {  # the from-scratch tagger's results files, and what each budget was
    "text_tasks_tag22k": "22,000 steps",
    "text_tasks_tag": "20 wall-minutes",
}


def subset(brown: Path, k: int, where: Path) -> Path:
    """A folder of links to the first ``k`` files of each genre of ``brown`` (and its
    ``cats.txt``), for smoke runs."""
    genres: dict[str, list[str]] = {}
    for line in (brown / "cats.txt").read_text().splitlines():
        if line.strip():
            name, genre = line.split()
            genres.setdefault(genre, []).append(name)
    where.mkdir(parents=True, exist_ok=True)
    for name in ["cats.txt", *(f for files in genres.values() for f in sorted(files)[:k])]:
        link = where / name
        if not link.exists():
            link.symlink_to((brown / name).resolve())
    return where


def train_tagger(args, source: dict, config: tag.TagConfig, strings, out: Path) -> dict:
    """Train one tagger under the budget and score it on the test files."""
    seed_everything(0)
    train_set, valid_set, _ = tag.load_source(source)
    task = tag.TagTask(train_set, valid_set, config, 0, source=source, strings=strings)
    start = time.perf_counter()
    task.cache_strings()  # the frozen LMs read every sentence once
    features = round(time.perf_counter() - start) if strings is not None else None
    by_time = not args.steps
    train = TrainConfig(
        steps=10**6 if by_time else args.steps,
        time_limit=args.minutes * 60 if by_time else None,
        anneal_by_time=by_time,
        lr=2e-3,
        clip_norm=5.0,
        eval_every=args.eval_every,
        progress=False,
    )
    start = time.perf_counter()
    Trainer(task, train, out).fit()
    seconds = time.perf_counter() - start
    scores = load_run(out).evaluate(split="test")
    return scores | {"train_seconds": round(seconds), "feature_seconds": features}


def quoted() -> tuple[dict[str, float], dict[str, float]]:
    """The from-scratch tagger's recorded test token and unseen-word accuracy, by results
    file (the project's ``baseline`` shape: name -> number)."""
    tokens, unseen = {}, {}
    for stem, budget in QUOTED.items():
        path = ROOT / "bench" / "results" / f"{stem}.json"
        if path.exists():
            found = json.loads(path.read_text())["rows"][0]
            name = f"from scratch, {budget} ({stem}.json, quoted)"
            tokens[name], unseen[name] = found["value"], found["unseen_accuracy"]
    return tokens, unseen


def model_name(c: tag.TagConfig, strings_size: int) -> str:
    """E.g. "tag bilstm-crf 128 + words + char-cnn + strings 512"."""
    parts = [f"tag bilstm-{'crf' if c.crf else 'softmax'} {c.hidden}"]
    parts += ["words"] * bool(c.word_embedding) + ["char-cnn"] * bool(c.char_filters)
    parts += [f"strings {strings_size}"] * bool(strings_size)
    return " + ".join(parts)


def unknown_share(strings, source: dict) -> dict[str, float]:
    """Share of the training text's characters each LM's vocabulary lacks (they are read as
    substitutes, ``elman.tasks.tag.strings``): LMs pretrained on unlike text show here."""
    text = "".join(w for s in tag.load_source(source)[0] for w, _ in s)
    counts = Counter(text)
    return {
        side: round(sum(n for c, n in counts.items() if c not in vocab.chars) / len(text), 5)
        for side, vocab in zip(("forward", "backward"), strings.vocabs, strict=True)
    }


def row(name: str, scores: dict, **extra) -> dict:
    return {
        "name": name,
        "metric": "token_accuracy",
        "value": round(scores["accuracy"], 4),
        "better": "higher",
        "unseen_accuracy": round(scores["unseen_accuracy"], 4),
        "unseen_tokens": scores["unseen_tokens"],
        "tokens": scores["tokens"],
        "train_seconds": scores["train_seconds"],
        "feature_seconds": scores["feature_seconds"],
        **extra,
    }


def markdown(meta: dict, rows: list[dict]) -> str:
    head = ["name", "token accuracy", "unseen-word accuracy", "train s", "LM features s"]
    body = [
        [
            r["name"],
            f"{r['value']:.4f}",
            f"{r['unseen_accuracy']:.4f}",
            str(r["train_seconds"]),
            "-" if r["feature_seconds"] is None else str(r["feature_seconds"]),
        ]
        for r in rows
    ]
    first = rows[0]
    notes = [
        f"- {k}: {v:.4f} / {first['baseline_unseen_accuracy'][k]:.4f}"
        for k, v in first["baseline"].items()
    ]
    return "\n".join(
        [
            f"# Brown POS tagging with contextual string embeddings: {meta['budget']}",
            "",
            f"{meta['machine']}; {meta['date']}; {meta['data']}.",
            "",
            *markdown_table(head, body),
            "",
            "From scratch (token / unseen-word accuracy):" if notes else "",
            *notes,
            "",
        ]
    )


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--forward", required=True, help="forward character LM run")
    p.add_argument("--backward", required=True, help="backward character LM run (--reverse)")
    p.add_argument("--minutes", type=float, default=20, help="the tagger's wall-clock budget")
    p.add_argument("--steps", type=int, default=0, help="a step budget instead (0: --minutes)")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--word-embedding", type=int, default=100, help="0: none (LM features only)")
    p.add_argument("--char-filters", type=int, default=50, help="0: no character CNN")
    p.add_argument("--no-crf", action="store_true", help="a per-word softmax instead")
    p.add_argument("--scratch", action="store_true", help="re-run the from-scratch tagger here")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the quoted runs used 1)")
    p.add_argument("--brown", default=str(DATA), help="the Brown corpus folder")
    p.add_argument("--subset", type=int, default=0, help="first K files per genre (smoke)")
    p.add_argument("--runs", default="bench/runs/tag_strings")
    p.add_argument("--results", default="bench/results")
    p.add_argument("--name", default="tag_strings")
    return p.parse_args()


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)  # before the header, which names the threads
    runs = Path(args.runs)
    brown = Path(args.brown)
    if args.subset:
        brown = subset(brown, args.subset, runs / f"brown_{args.subset}")
    source = {"kind": "brown", "path": str(brown.resolve())}
    strings = load_strings([args.forward, args.backward])
    config = tag.TagConfig(
        word_embedding=args.word_embedding,
        char_filters=args.char_filters,
        crf=not args.no_crf,
        strings=True,
    )
    budget = f"{args.steps} steps" if args.steps else f"{args.minutes:g} min wall"
    split = "split by file, 414/45/41" if not args.subset else f"first {args.subset} per genre"
    meta = metadata("tag_strings", f"{budget} (tagger)", f"Brown ({split})")
    lms = strings.describe()
    scores = train_tagger(args, source, config, strings, runs / "strings")
    tokens, unseen = quoted() if not args.subset else ({}, {})  # a subset: not comparable
    rows = [
        row(
            f"{model_name(config, strings.size)} (Brown test)",
            scores,
            baseline=tokens,
            baseline_unseen_accuracy=unseen,
            config=asdict(config),
            lms={side: {"model": lm["model"], "source": lm["source"]} for side, lm in lms.items()},
            lm_unknown_char_share=unknown_share(strings, source),
        )
    ]
    if args.scratch:
        plain = replace(config, word_embedding=100, char_filters=50, crf=True, strings=False)
        scratch = train_tagger(args, source, plain, None, runs / "scratch")
        rows.append(row(f"{model_name(plain, 0)}, from scratch (Brown test)", scratch))
        name = f"from scratch, {budget} (re-run here)"
        rows[0]["baseline"][name] = round(scratch["accuracy"], 4)
        rows[0]["baseline_unseen_accuracy"][name] = round(scratch["unseen_accuracy"], 4)
    for r in rows:
        print(r["name"], r["value"], r["unseen_accuracy"], r["train_seconds"], flush=True)
    write_results(Path(args.results), args.name, meta, rows, len(rows), markdown(meta, rows))


if __name__ == "__main__":
    main()
