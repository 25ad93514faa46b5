"""Command-line options generated from the config dataclasses, and shared option groups."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path

from elman.fields import documented
from elman.files import output_dir
from elman.train import TrainConfig

INT_MAX = 2**63 - 1  # torch's sizes and counts are 64-bit
FLOAT_MAX = 3.4028234663852886e38  # float32's largest: parameters and data are float32


def integer(text: str) -> int:
    """argparse type: an integer that fits torch's 64 bits (a larger one fails deep inside)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if abs(value) > INT_MAX:
        raise argparse.ArgumentTypeError(f"{text} is out of range (at most 2**63 - 1)")
    return value


def number(text: str) -> float:
    """argparse type: a finite number within float32's range."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not abs(value) <= FLOAT_MAX:
        raise argparse.ArgumentTypeError(
            f"{text} is not a finite number within float32's range (+-{FLOAT_MAX:.4g})"
        )
    return value


def _kind(annotation: str):
    """The argparse type of a field annotated ``annotation`` (a string under PEP 563)."""
    for name, kind in (("bool", bool), ("int", integer), ("float", number)):
        if name in str(annotation):
            return kind
    return str


def add_dataclass_options(
    parser: argparse.ArgumentParser, cls, defaults: Mapping | None = None
) -> None:
    """One option per documented field of ``cls`` (its help in the field's metadata, see
    ``elman.fields``), defaulting to ``defaults`` (the task's recommendation) or the field's."""
    for f in documented(cls):
        default = (defaults or {}).get(f.name, f.default)
        flag = "--" + f.name.replace("_", "-")
        text = f"{f.metadata['help']} (default: {default})"
        kind = _kind(f.type)
        if kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=text
            )
        elif "tuple" in str(f.type):
            parser.add_argument(flag, type=kind, nargs="*", default=default, help=text)
        else:
            choices = f.metadata.get("choices")
            parser.add_argument(flag, type=kind, default=default, choices=choices, help=text)


def add_task_options(parser: argparse.ArgumentParser, spec) -> None:
    """Every option of an `elman train TASK` parser that its ``TaskSpec`` gives: the model
    config's fields, the run and training options at the task's defaults, its presets."""
    add_dataclass_options(parser, spec.config)
    add_run_options(parser, dict(spec.train_defaults))
    add_preset_option(parser, spec.presets)


def add_preset_option(parser: argparse.ArgumentParser, presets: Mapping) -> None:
    """``--preset NAME``: the named values become the defaults of this parser's options
    (``elman.cli`` parses again with them), so options given beside it still win."""
    if not presets:
        return
    shown = "; ".join(
        f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items())
        for name, values in presets.items()
    )
    parser.add_argument(
        "--preset", choices=list(presets), default=None, help=f"start from a preset ({shown})"
    )
    parser.set_defaults(presets=presets)


def add_init_option(
    parser: argparse.ArgumentParser,
    derive: Callable[[argparse.Namespace], dict] | None = None,
    help: str | None = None,
    single: bool = False,
    metavar: str = "LM_RUN",
) -> None:
    """``--init-from``: start from pretrained language-model runs (one run if ``single``).
    ``derive(args)`` gives the option defaults they imply (their sizes; ``elman.cli`` parses
    again with them); by default one LM run or a forward and a backward one initialise a
    classifier's encoder and ``elman.tasks.transfer.architecture`` derives."""
    parser.add_argument(
        "--init-from",
        nargs=None if single else "+",
        metavar=metavar,
        default=None,
        help=help
        or "start from a pretrained language model's vocabulary, embeddings and encoder: "
        "one forward LM run, or a forward and a backward one (trained with --reverse) for a "
        "bidirectional encoder; its cell and sizes become the defaults",
    )
    parser.set_defaults(derive=derive or derive_from_lms)


def derive_from_lms(args: argparse.Namespace) -> dict:
    """The option defaults ``--init-from`` implies for an encoder (none without it)."""
    from elman.tasks.transfer import architecture, load_pretrained

    return architecture(load_pretrained(args.init_from)) if args.init_from else {}


def add_run_options(parser: argparse.ArgumentParser, train_defaults: dict) -> None:
    """--out, --overwrite, --config, --no-progress, --epochs and every training option."""
    parser.add_argument("--out", required=True, help="directory for checkpoints, logs and plots")
    # The order below is kept by elman.cli._parse: a file is the user's explicit record (what
    # `elman tune` wrote), so it sits above what --init-from infers, and a size that
    # contradicts the LM is refused as one given on the command line would be.
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="read option values from a TOML, JSON or YAML file (`hidden = 256`, `lr = 0.002`, "
        '`cell = "gru"`, data options too; names as the options\' without the dashes, and '
        "tables [model], [train], [data] only group); lowest first: the task's defaults, "
        "--preset, what --init-from derives, the file, the command line (which always wins); "
        "--out and --overwrite stay on the command line; relative paths are read from the "
        "working directory, as on the command line",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--epochs",
        type=integer,
        default=None,
        help="train this many passes over the training data (sets --steps from the data)",
    )
    add_dataclass_options(parser, TrainConfig, train_defaults)


def config_from(args: argparse.Namespace, cls, **extra):
    """An instance of the config dataclass ``cls`` from the parsed options of its fields."""
    return cls(
        **{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}, **extra
    )


def train_config(args: argparse.Namespace) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in documented(TrainConfig)}
    if values["clip_norm"] == 0:
        values["clip_norm"] = None
    return TrainConfig(**values, progress=not args.no_progress)


def refuse_existing(out: str | Path, overwrite: bool) -> Path:
    """``out`` as a Path; an error if it already holds a run and ``overwrite`` is off."""
    out = output_dir(out, "--out")
    if (out / "last.safetensors").exists() and not overwrite:
        raise ValueError(
            f"--out {str(out)!r} already holds a run; continue it with "
            f"`elman resume {out}`, pick another --out, or pass --overwrite"
        )
    return out
