"""The ``elman`` command: a thin shell that parses, validates, and calls tasks and the trainer.

elman train charlm|wordlm|classify|tag|seq2seq|forecast|music|asr ... --out DIR [options]
elman generate DIR --prompt "ROMEO:" --length 500 --temperature 0.8     (language models)
elman generate DIR --midi out.mid [--primer-steps 8 --length 64]       (music)
elman predict DIR [INPUT|-] [--format jsonl|csv]    next words, labels or tags per input line
elman translate DIR [INPUT|-] [--beam 5 --nbest 5]  seq2seq outputs per input line
elman explain DIR TEXT [--signal quotes --out D]    activations, saliency, gradient flow
                                                    (charlm/wordlm); attention (seq2seq)
elman forecast DIR [DATA] [--horizon H --plot PNG] point forecasts and intervals (CSV)
elman backtest DIR DATA [--origins 5]               rolling-origin scores beside baselines
elman detect DIR DATA [--quantile 0.99]             anomaly scores and flags (CSV)
elman transcribe DIR AUDIO... [--timings --beam 16 --lm LM_DIR]  speech to text (asr)
elman speech-corpus OUT [--brown DIR --train N]     synthesise a spoken corpus (eSpeak NG)
elman evaluate DIR [DATA]                           the task's metrics (default: held-out data)
elman export DIR --format onnx [--mode sequence|step]  ONNX graph, checked in onnxruntime
elman serve DIR [DIR...] [--host --port --token]      HTTP API with streaming sessions
elman resume DIR [--steps N]
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import re
import sys
from pathlib import Path

from elman.cli import export as export_cli
from elman.cli import serve as serve_cli
from elman.cli import tune as tune_cli
from elman.cli import verbs
from elman.tasks.configfile import read_config
from elman.tasks.options import integer
from elman.tasks.registry import load_run, spec, spec_of, specs, task_of
from elman.tasks.report import report
from elman.train import CheckpointError, NonFiniteError
from elman.train.checkpoint import read_meta, reading
from elman.train.distributed import init_from_env, shutdown


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="elman", description="Sequence models with RNNs.")
    sub = p.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model").add_subparsers(dest="task", required=True)
    p.set_defaults(train_parsers=train.choices)
    for module in dict.fromkeys(s.command for s in specs()):  # one module may hold two tasks
        importlib.import_module(module).add_parsers(train, sub)
    tune_cli.add_parsers(sub, train.choices)
    verbs.add_parsers(sub)
    export_cli.add_parsers(sub)
    serve_cli.add_parsers(sub)
    r = sub.add_parser("resume", help="continue an interrupted run exactly")
    r.add_argument("dir", help="model directory")
    r.add_argument("--steps", type=integer, default=None, help="new total step count")
    return p


def _owned(args: argparse.Namespace) -> None:
    """A command one task owns (translate, forecast...): refused for another task's run."""
    task, needed = task_of(args.dir), args.run_type.spec.name
    if task != needed:  # read from the header first: another task's model may not load as this
        raise ValueError(
            f"`elman {args.command}` needs a {needed} model; {args.dir} holds a {task} model"
        )
    args.handler(args, load_run(args.dir, getattr(args, "checkpoint", "best")))


def _run(args: argparse.Namespace) -> None:
    if args.command == "train":
        report(args.train(args), Path(args.out), spec(args.task))
        if getattr(args, "after_train", None):  # e.g. a sample from the trained model
            args.after_train(args)
    elif args.command == "tune":
        args.run_tune(args)
    elif args.command in verbs.COMMANDS:
        run = load_run(args.dir, args.checkpoint)
        verbs.refuse_unread(args, args.command, run).run(args, run)
    elif hasattr(args, "handler"):
        _owned(args)
    elif hasattr(args, "task_command"):  # a task's own command on no run (a corpus maker)
        args.task_command(args)
    elif args.command == "serve":
        serve_cli.serve(args)
    elif args.command == "export":
        print(json.dumps(export_cli.export(args)))
    elif args.command == "resume":
        found = spec_of(args.dir)
        report(found.resume(args.dir, args.steps), Path(args.dir), found)
    else:
        raise ValueError(f"unknown command {args.command!r}")


def _run_device(args: argparse.Namespace) -> str:
    """The device the command trains on: its --device, or for resume the run's own."""
    if args.command == "resume":
        path = Path(args.dir) / "last.safetensors"
        try:
            with reading(path):
                return str(read_meta(path)["train"].get("device", "cpu"))
        except CheckpointError:
            return "cpu"  # _run reports what is wrong with the directory
    return getattr(args, "device", "cpu")


def os_error(e: OSError) -> str:
    """One line for a failed read or write, naming the path."""
    where = f" ({e.filename})" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"the disk is full{where}; nothing was replaced: the last good checkpoint and "
            "every earlier file are as they were (`elman resume DIR` once there is room)"
        )
    return f"{e.strerror or e}{where}"


def out_of_memory(e: BaseException) -> str:
    wanted = re.search(r"allocate (\d+) bytes", str(e))
    size = f" ({int(wanted.group(1)) / 2**30:.3g} GiB at once)" if wanted else ""
    return (
        f"not enough memory{size}: choose smaller sizes (hidden, embedding, layers, batch) "
        "or less data per batch"
    )


def _error(message: str) -> int:
    """Print one line (torch's messages run over several) and return the exit status 2."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"elman: error: {line}", file=sys.stderr)
    return 2


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse; with ``--config FILE``, ``--preset NAME`` or ``--init-from`` parse again, the
    values they imply now the defaults (a subparser's defaults are the only ones argparse
    lets options given beside them override). Lowest first: the task's defaults, the preset,
    what --init-from derives, the file, the command line. The file is the user's explicit
    record, so it stands above what --init-from infers: a size contradicting the LM is then
    refused, as on the command line, rather than silently replaced."""
    parser = _parser()
    args = parser.parse_args(argv)
    given = getattr(args, "config", None) if args.command in ("train", "tune") else None
    from_file = read_config(given, _task_parser(args)) if given else {}
    if from_file:  # the file may name the preset or --init-from: parse with it first
        args = _parse_again(parser, argv, args, from_file)
    defaults = {}
    if getattr(args, "preset", None):
        defaults |= args.presets[args.preset]
    if getattr(args, "derive", None):  # e.g. --init-from: the LM's sizes
        defaults |= args.derive(args)
    if defaults:
        args = _parse_again(parser, argv, args, defaults | from_file)
    return args


def _parse_again(
    parser: argparse.ArgumentParser, argv: list[str] | None, args: argparse.Namespace, defaults
) -> argparse.Namespace:
    _task_parser(args).set_defaults(**defaults)
    return parser.parse_args(argv)


def _task_parser(args: argparse.Namespace) -> argparse.ArgumentParser:
    """The subparser of the task's train or tune command (the one whose defaults to set)."""
    return getattr(args, "task_parsers", args.train_parsers)[args.task]


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(argv)  # --init-from reads the LM runs already
    except (ValueError, TypeError, CheckpointError) as e:
        return _error(str(e))
    except OSError as e:
        return _error(os_error(e))
    init_from_env(_run_device(args))
    try:
        _run(args)
    except (
        ValueError,
        TypeError,
        ImportError,
        CheckpointError,
        NonFiniteError,
    ) as e:
        return _error(str(e))
    except OSError as e:  # a path the user gave: missing, a directory, unwritable, disk full
        return _error(os_error(e))
    except MemoryError as e:
        return _error(out_of_memory(e))
    except RuntimeError as e:  # torch reports a failed allocation as a RuntimeError
        if "can't allocate memory" not in str(e):
            raise
        return _error(out_of_memory(e))
    except KeyboardInterrupt:
        print(
            "elman: interrupted; the last checkpoint is intact (`elman resume DIR`)",
            file=sys.stderr,
        )
        return 130
    finally:
        shutdown()
    return 0


__all__ = ["main", "task_of"]
