"""The contract every task keeps: a ``TaskSpec`` (how to train, resume and load it) and the
``Run`` it loads (a trained model directory with one set of methods for every task).

The CLI, the server, the exporter and the streams reach a task only through these two, found
by name in ``elman.tasks.registry``: they never compare task names or guess a model's kind.
A method a task cannot offer raises ``ValueError`` saying why and what to use instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from torch import nn

from elman.tasks.report import validation_line
from elman.train.config import TrainConfig


@dataclass(frozen=True)
class Handler:
    """How a task answers one shared command: ``run(args, loaded_run)`` prints the answer;
    ``reads`` lists the command's optional options (argparse default None) that it reads."""

    run: Callable[[Any, Run], None]
    reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """One task. ``load(dir, which)`` opens a trained run as a ``Run``; ``resume(dir, steps,
        until)`` continues an interrupted one exactly; ``config`` is the model's config class and
        ``train_defaults`` the ``TrainConfig`` values the task recommends (the CLI and the Python
        API train the same model). ``validation`` words a run's last ``val_*`` figures in
    the task's units. ``command`` names the module of its command-line adapter and
        ``served`` the ``module:Class`` of its HTTP adapter (both imported on first use, since they
        live above ``elman.tasks``)."""

    name: str
    summary: str
    config: type
    load: Callable[..., Run]
    resume: Callable[..., dict]
    command: str
    served: str
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    validation: Callable[[dict], str] = validation_line  # a run's last val_* figures, in words
    # named sets of model and training values (e.g. "awd"): `--preset NAME`, then options
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # `elman tune`: the default search space over model and training fields, in a space
    # file's form (``elman.tune.space``), and the val_* metric a search optimises (in
    # ``TrainConfig.monitor``'s syntax: a leading '+' or '-' forces the direction)
    space: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    objective: str = "val_loss"

    def train_config(self, **overrides: Any) -> TrainConfig:
        """The ``TrainConfig`` this task recommends (what `elman train` uses), with
        ``overrides``: the Python API and the command line train the same model."""
        return TrainConfig(**(dict(self.train_defaults) | overrides))

    def preset(self, name: str, **overrides: Any) -> tuple[Any, TrainConfig]:
        """The model config and ``TrainConfig`` of preset ``name`` (what `--preset NAME`
        trains), with ``overrides`` for either."""
        if name not in self.presets:
            known = ", ".join(self.presets) or "none"
            raise ValueError(f"preset: {self.name} has no preset {name!r} (it has: {known})")
        values = dict(self.presets[name]) | overrides
        model = {k: v for k, v in values.items() if k in self.config.__dataclass_fields__}
        train = {k: v for k, v in values.items() if k not in model}
        return self.config(**model), self.train_config(**train)

    def commands(self) -> ModuleType:
        """The task's command-line adapter (``add_train_parser``, ``train``, ``HANDLERS``)."""
        return importlib.import_module(self.command)

    def served_class(self) -> type:
        """The class that answers this task's HTTP endpoints."""
        module, _, name = self.served.partition(":")
        return getattr(importlib.import_module(module), name)


class Run:
    """A trained run: its ``model`` (eval mode), checkpoint header ``meta`` and model
    ``config``, read from ``path`` (checkpoint ``which``). Subclasses set ``spec`` and
    override what their task offers; the defaults refuse with a reason."""

    spec: ClassVar[TaskSpec]
    streams_why: ClassVar[str] = ""  # why this task's models never stream ("" if some do)

    def __init__(self, path: str | Path, which: str, model: nn.Module, meta: dict, config: Any):
        self.path, self.which = Path(path), which
        self.model, self.meta, self.config = model, meta, config

    @property
    def task(self) -> str:
        return self.spec.name

    def recurrent(self) -> nn.Module | None:
        """The model's main recurrent layer (for descriptions), or None."""
        return getattr(self.model, "rnn", None)

    def describe(self) -> dict:
        """What the run is: task, step, parameters, the recurrent layer's shape and the
        task's own details (vocabulary, classes, horizon...)."""
        info = {
            "task": self.task,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "step": self.meta.get("step"),
        }
        rnn = self.recurrent()
        c = getattr(rnn, "config", None)
        if c is not None:
            info |= {
                "cell": c.mode,
                "hidden_size": c.hidden_size,
                "num_layers": c.num_layers,
                "bidirectional": c.bidirectional,
            }
        return info | self.details()

    def details(self) -> dict:
        return {}

    def predict(self, inputs: Sequence[Any], **options: Any) -> list[dict]:
        """One result row per input (text, words, a series...)."""
        raise ValueError(f"a {self.task} model does not predict; {self.instead('predict')}")

    def evaluate(self, data: Any = None, **options: Any) -> dict:
        """The task's metrics on ``data`` (default: the run's held-out split)."""
        raise ValueError(f"a {self.task} model is not evaluated; {self.instead('evaluate')}")

    def test(self) -> dict:
        """The task's metrics on the run's test split, which neither training nor the choice
        of checkpoint saw (what a search reports for its best trial)."""
        raise ValueError(
            f"a {self.task} run has no test split apart from its validation data; score "
            "held-out data with `elman evaluate DIR DATA`"
        )

    def open_stream(self, **options: Any) -> Any:
        """A new stream (see ``elman.tasks.streams``): feed steps, keep state between calls."""
        raise ValueError(f"a {self.task} model cannot stream: {self.streams_why}")

    def restore_stream(self, data: bytes) -> Any:
        """The stream that ``to_bytes`` saved as ``data``."""
        raise ValueError(f"a {self.task} model cannot stream: {self.streams_why}")

    def pretrained(self) -> Any:
        """What this run lends to a model it initialises (``elman.tasks.transfer``)."""
        raise ValueError(
            f"--init-from needs a language-model run (charlm or wordlm); {self.path} holds a "
            f"{self.task} model"
        )

    def graphs(self, mode: str | None = None) -> Any:
        """The ONNX graphs of the model with real inputs (``elman.graphs.graph.Export``)."""
        raise ValueError(f"a {self.task} model has no ONNX graphs")

    def instead(self, verb: str) -> str:
        """What to use instead of ``verb`` (a hint for refusals)."""
        return "see `elman --help`"


__all__ = ["Handler", "Run", "TaskSpec"]
