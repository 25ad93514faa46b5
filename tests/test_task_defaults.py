"""Configuration written once: for every registered task, `elman train <task>` with no
options trains exactly what the Python API's defaults train (the config class's defaults and
``spec.train_config()``), and every option's help comes from its field's metadata."""

from __future__ import annotations

import pytest

from elman.cli import _parser
from elman.fields import documented
from elman.tasks.registry import names, spec
from elman.train import TrainConfig


def _defaults(task: str):
    """The options `elman train TASK` parses when given only what it requires."""
    parser = _parser()
    for extra in ([], ["data.csv"], ["--chorales"]):  # what a task requires: data, a corpus
        try:
            return parser.parse_args(["train", task, *extra, "--out", "run"])
        except SystemExit:
            continue
    raise AssertionError(f"`elman train {task}` does not parse with only --out and a data path")


@pytest.mark.parametrize("task", names())
def test_the_cli_trains_the_python_apis_defaults(task):
    found, args = spec(task), _defaults(task)
    config, train = found.config(), found.train_config()
    offered = documented(found.config)
    assert offered, f"{task}: its config offers no documented field"
    for f in offered:
        assert getattr(args, f.name) == getattr(config, f.name), (task, f.name)
    for f in documented(TrainConfig):
        assert getattr(args, f.name) == getattr(train, f.name), (task, f.name)


@pytest.mark.parametrize("task", names())
def test_every_documented_field_is_an_option_with_its_help(task, capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", task, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in [*documented(spec(task).config), *documented(TrainConfig)]:
        assert "--" + f.name.replace("_", "-") in text, (task, f.name)
        assert " ".join(f.metadata["help"].split())[:40] in text, (task, f.name)
