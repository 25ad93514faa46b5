"""``elman`` commands for tagging: `elman train tag`, and `elman predict` and
`elman evaluate` on a tagger's run directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from elman.tasks import textio
from elman.tasks.options import (
    add_init_option,
    add_task_options,
    config_from,
    refuse_existing,
    train_config,
)
from elman.tasks.spec import Handler
from elman.tasks.tag import task as tag
from elman.tasks.tag.lms import load_strings
from elman.tasks.tag.run import SPEC, TagRun
from elman.tasks.transfer import load_pretrained


def add_parsers(train: argparse._SubParsersAction, sub: argparse._SubParsersAction) -> None:
    """`elman train tag` (tagging answers no command of its own beyond it)."""
    t = train.add_parser(
        "tag",
        help="sequence tagger (e.g. part of speech)",
        description="Train a BiLSTM(-CRF) tagger on the Brown corpus or word<TAB>tag files, "
        "optionally reading contextual string embeddings from two character LMs (--strings).",
    )
    t.add_argument("--brown", help="the Brown corpus folder (POS tags, split 80/10/10 by file)")
    t.add_argument(
        "--train", dest="train_file", help="word<TAB>tag file, blank line between sentences"
    )
    t.add_argument("--valid", help="validation file in the same format")
    t.add_argument("--test", help="test file, scored by `elman evaluate`")
    t.add_argument(
        "--strings",
        dest="strings_runs",
        nargs=2,
        metavar=("FORWARD_RUN", "BACKWARD_RUN"),
        default=None,
        help="contextual string embeddings (Akbik et al. 2018) as word features: a forward and "
        "a backward character LM run (`elman train charlm`, the second with --reverse; sizes "
        "may differ), frozen and copied into this run",
    )
    add_task_options(t, SPEC)
    add_init_option(t, derive_tagger, INIT_HELP)
    t.set_defaults(train=train_tag)


INIT_HELP = (
    "start from a forward and a backward word LM run (the second trained with --reverse): "
    "their embeddings for the tagger's words and their layers as its two directions; their "
    "cell and sizes become the defaults (and --char-filters 0: the layers read words alone)"
)


def derive_tagger(a: argparse.Namespace) -> dict:
    """The tagger options ``--init-from`` implies: the LMs' cell and sizes (none without)."""
    if not a.init_from:
        return {}
    sizes = load_pretrained(a.init_from)[0].sizes
    return {
        "cell": sizes["cell"],
        "word_embedding": sizes["embedding"],
        "hidden": sizes["hidden"],
        "layers": sizes["layers"],
        "char_filters": 0,
    }


def train_tag(a: argparse.Namespace) -> dict:
    """Train a tagger into ``--out`` on the Brown corpus or word<TAB>tag files; returns the
    last metrics."""
    out = refuse_existing(a.out, a.overwrite)
    if bool(a.brown) == bool(a.train_file):
        raise ValueError("give either --brown DIR or --train FILE (with --valid FILE)")
    if a.brown:
        source = {"kind": "brown", "path": str(Path(a.brown).resolve())}
    else:
        if not a.valid:
            raise ValueError("--train needs --valid FILE (word<TAB>tag) to validate on")
        source = {
            "kind": "conll",
            "train": str(Path(a.train_file).resolve()),
            "valid": str(Path(a.valid).resolve()),
            "test": str(Path(a.test).resolve()) if a.test else None,
        }
    strings = load_strings(a.strings_runs) if a.strings_runs else None
    config = config_from(a, tag.TagConfig, strings=strings is not None)
    init = a.init_from or ()
    return tag.train(
        source, config, train_config(a), out, epochs=a.epochs, strings=strings, init_from=init
    )


def predict(a: argparse.Namespace, run: TagRun) -> None:
    """The tags of each input line's whitespace-separated words (or CSV text column)."""
    inputs = textio.read_inputs(a.input, "text", a.text_column, sys.stdin, a.max_chars)
    rows = run.predict([str(t) for t in inputs.inputs])
    textio.write_rows(rows, a.format, textio.csv_row)


def evaluate(a: argparse.Namespace, run: TagRun) -> None:
    """Token and unseen-word accuracy on DATA (word<TAB>tag) or the run's --split."""
    print(json.dumps(run.evaluate(a.data, a.split or "test")))


HANDLERS = {"predict": Handler(predict), "evaluate": Handler(evaluate, reads=("split",))}

__all__ = ["HANDLERS", "add_parsers", "evaluate", "predict", "train_tag"]
