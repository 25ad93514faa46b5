"""The ``elman`` command: a thin shell that parses, validates, and calls tasks and the trainer.

elman train charlm [TEXT_FILE] --out DIR [model and training options]
elman generate DIR --prompt "ROMEO:" --length 500 --temperature 0.8
elman evaluate DIR [TEXT_FILE]
elman resume DIR [--steps N]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, fields
from pathlib import Path

from elman.data.text import read_text
from elman.decode import Sampling
from elman.nn import CELLS
from elman.tasks import charlm
from elman.train import CheckpointError, NonFiniteError, TrainConfig
from elman.train.config import OPTIMIZERS, SCHEDULES
from elman.train.distributed import init_from_env, is_main, shutdown

MODEL_HELP = {
    "cell": f"recurrent cell: {', '.join(CELLS)}",
    "embedding": "character embedding size",
    "hidden": "hidden units per layer",
    "layers": "stacked recurrent layers",
    "dropout": "dropout between layers and before the output layer, in [0, 1)",
    "batch_size": "parallel rows of text per batch (split across processes under torchrun)",
    "seq_len": "characters per chunk: how far back gradients flow (the state flows on)",
    "valid_fraction": "held-out tail of the text used for validation",
}
TRAIN_HELP = {
    "steps": "optimizer steps (the schedule spans them)",
    "time_limit": "stop after this many seconds of training",
    "optimizer": f"one of {', '.join(OPTIMIZERS)}",
    "anneal_by_time": "with --time-limit: the cosine schedule also advances with elapsed time, "
    "so a run cut short by the time limit still ends annealed (not bit-reproducible)",
    "lr": "peak learning rate",
    "weight_decay": "L2 / decoupled (adamw) weight decay",
    "momentum": "momentum for sgd and rmsprop",
    "beta1": "Adam beta1",
    "beta2": "Adam beta2",
    "schedule": f"learning-rate schedule: {', '.join(SCHEDULES)}",
    "warmup": "linear warm-up steps",
    "min_lr": "cosine: final learning rate as a fraction of --lr",
    "step_every": "step schedule: steps between decays",
    "gamma": "step/plateau schedule: decay factor",
    "plateau_patience": "plateau schedule: evaluations without gain before a decay",
    "clip_norm": "clip the global gradient norm to this (0 turns clipping off)",
    "clip_value": "clamp every gradient entry to +-this",
    "accumulate": "batches per optimizer step (gradient accumulation)",
    "eval_every": "steps between evaluations and checkpoints",
    "patience": "early stopping: evaluations without a better validation loss",
    "seed": "seed for everything random (initialisation, dropout, data order)",
    "log_every": "steps between metrics-log lines",
}


def _option_type(default: object):
    return {bool: None, int: int, float: float, str: str}.get(type(default), float)


def _add_dataclass_options(
    parser: argparse.ArgumentParser, cls, helps: dict, defaults: dict
) -> None:
    """One option per documented field of ``cls``, defaulting to ``defaults`` or the field's."""
    for f in fields(cls):
        if f.name not in helps:
            continue
        default = defaults.get(f.name, f.default)
        kind = (
            _option_type(default)
            if default is not None
            else (int if f.name == "patience" else float)
        )
        if isinstance(default, bool):
            parser.add_argument(
                "--" + f.name.replace("_", "-"),
                action=argparse.BooleanOptionalAction,
                default=default,
                help=f"{helps[f.name]} (default: {default})",
            )
            continue
        choices = {"cell": CELLS, "optimizer": OPTIMIZERS, "schedule": SCHEDULES}.get(f.name)
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            type=kind,
            default=default,
            choices=choices,
            help=f"{helps[f.name]} (default: {default})",
        )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="elman", description="Sequence models with RNNs.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model").add_subparsers(dest="task", required=True)
    lm = t.add_parser(
        "charlm",
        help="character language model",
        description="Train a character-level language model on a UTF-8 text.",
    )
    lm.add_argument(
        "text",
        nargs="*",
        help="UTF-8 text file(s); several files are separate documents, and the hidden state "
        "resets between them (default: the bundled Shakespeare corpus)",
    )
    lm.add_argument("--out", required=True, help="directory for checkpoints, logs and plots")
    lm.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    lm.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    lm.add_argument(
        "--sample-length",
        type=int,
        default=300,
        help="characters to generate after training (0: none)",
    )
    _add_dataclass_options(lm, charlm.CharLMConfig, MODEL_HELP, asdict(charlm.DEFAULT_MODEL))
    _add_dataclass_options(lm, TrainConfig, TRAIN_HELP, charlm.DEFAULT_TRAIN)

    g = sub.add_parser("generate", help="generate text from a trained model")
    g.add_argument("dir", help="model directory written by `elman train`")
    g.add_argument("--prompt", default="\n", help="text to prime the model with")
    g.add_argument("--length", type=int, default=500, help="characters to generate")
    g.add_argument("--temperature", type=float, default=0.8, help="0 = greedy; higher = wilder")
    g.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest")
    g.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass, in (0, 1]")
    g.add_argument("--seed", type=int, default=None, help="fixed seed: reproducible samples")
    g.add_argument(
        "--checkpoint", choices=("best", "last"), default="best", help="which checkpoint to use"
    )
    g.add_argument(
        "--unknown",
        choices=("error", "skip"),
        default="error",
        help="prompt characters the model never saw: error, or skip them",
    )

    e = sub.add_parser("evaluate", help="validation loss of a trained model")
    e.add_argument("dir", help="model directory")
    e.add_argument("text", nargs="?", help="text to score (default: the run's validation split)")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best")

    r = sub.add_parser("resume", help="continue an interrupted run exactly")
    r.add_argument("dir", help="model directory")
    r.add_argument("--steps", type=int, default=None, help="new total step count")
    return p


def _train_charlm(a: argparse.Namespace) -> None:
    out = Path(a.out)
    if (out / "last.safetensors").exists() and not a.overwrite:
        raise ValueError(
            f"--out {str(out)!r} already holds a run; continue it with "
            f"`elman resume {out}`, pick another --out, or pass --overwrite"
        )
    model = charlm.CharLMConfig(**{f.name: getattr(a, f.name) for f in fields(charlm.CharLMConfig)})
    values = {f.name: getattr(a, f.name) for f in fields(TrainConfig) if f.name in TRAIN_HELP}
    if values["clip_norm"] == 0:
        values["clip_norm"] = None
    train = TrainConfig(**values, progress=not a.no_progress)
    metrics = charlm.train(a.text, model, train, out)
    _report(metrics, out)
    if a.sample_length and is_main():
        _sample(out, "\n", a.sample_length, Sampling(0.8, seed=train.seed))


def _report(metrics: dict, out: Path) -> None:
    if is_main():
        nats = metrics["val_loss"]
        print(
            f"validation: {nats:.4f} nats/char, {nats / math.log(2):.4f} bits/char; "
            f"checkpoints in {out}",
            flush=True,
        )


def _sample(
    out: Path,
    prompt: str,
    length: int,
    sampling: Sampling,
    which: str = "best",
    unknown: str = "error",
) -> None:
    model, vocab, _ = charlm.load(out, which)
    sys.stdout.write(prompt)
    for ch in charlm.generate(model, vocab, prompt, length, sampling, unknown):
        sys.stdout.write(ch)
        sys.stdout.flush()
    sys.stdout.write("\n")


def _evaluate(a: argparse.Namespace) -> None:
    model, vocab, meta = charlm.load(a.dir, a.checkpoint)
    if a.text is None:
        ids, what = charlm.validation_ids(a.dir), "validation split"
    else:
        ids, what = vocab.encode(read_text(a.text), "skip"), a.text
    nats = charlm.evaluate_ids(model, ids)
    print(
        json.dumps(
            {
                "data": what,
                "chars": int(ids.numel()),
                "nats_per_char": nats,
                "bits_per_char": nats / math.log(2),
                "step": meta.get("step"),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    init_from_env()
    try:
        if args.command == "train" and args.task == "charlm":
            _train_charlm(args)
        elif args.command == "generate":
            _sample(
                Path(args.dir),
                args.prompt,
                args.length,
                Sampling(args.temperature, args.top_k, args.top_p, args.seed),
                args.checkpoint,
                args.unknown,
            )
        elif args.command == "evaluate":
            _evaluate(args)
        elif args.command == "resume":
            _report(charlm.resume(args.dir, args.steps), Path(args.dir))
        else:
            raise ValueError(f"unknown command {args.command!r}")
    except (ValueError, TypeError, FileNotFoundError, CheckpointError, NonFiniteError) as e:
        print(f"elman: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "elman: interrupted; the last checkpoint is intact (`elman resume DIR`)",
            file=sys.stderr,
        )
        return 130
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
