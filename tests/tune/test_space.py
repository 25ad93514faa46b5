"""Search spaces for `elman tune` (``elman.tune.space``): reading TOML/JSON/YAML files, every
refusal with its message, sampling through Optuna (conditional parameters appear exactly when
their condition holds), fixed trials, grids, and each task's default space."""

from __future__ import annotations

import json
import sys
from dataclasses import fields, replace

import pytest

from elman.tasks.registry import spec, specs
from elman.train import TrainConfig
from elman.train.config import monitor_sign
from elman.tune.space import Param, Space, default_space, read_space

CLASSIFY = spec("classify")
TOML = """
cell = { type = "categorical", choices = ["lstm", "gru"] }
hidden = { type = "int", low = 64, high = 256, step = 64 }

[lr]
type = "float"
low = 1e-4
high = 1e-2
log = true

[steps]
value = 50

[schedule]
type = "categorical"
choices = ["cosine", "constant"]

[min_lr]
type = "float"
low = 0.01
high = 0.5
when = { schedule = "cosine" }
"""
CONDITIONAL = {
    "cell": {"type": "categorical", "choices": ["lstm", "gru"]},
    "hidden": {"type": "int", "low": 64, "high": 256, "step": 64},
    "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "steps": {"value": 50},
    "schedule": {"type": "categorical", "choices": ["cosine", "constant"]},
    "min_lr": {"type": "float", "low": 0.01, "high": 0.5, "when": {"schedule": "cosine"}},
}


def parse(mapping: dict) -> Space:
    return Space.parse(mapping, "s.toml")


def test_a_toml_file_and_a_json_file_read_as_the_same_space(tmp_path):
    (tmp_path / "s.toml").write_text(TOML)
    (tmp_path / "s.json").write_text(json.dumps(CONDITIONAL))
    toml, js = read_space(tmp_path / "s.toml"), read_space(tmp_path / "s.json")
    assert toml.params == js.params
    assert toml.describe() == [
        "cell: one of lstm, gru",
        "hidden: int 64..256, step 64",
        "lr: float 0.0001..0.01, log",
        "steps: fixed at 50",
        "schedule: one of cosine, constant",
        "min_lr: float 0.01..0.5 (when schedule = cosine)",
    ]
    toml.check(CLASSIFY)
    assert toml.where == str(tmp_path / "s.toml")


def test_a_yaml_file_reads_with_pyyaml_and_says_how_to_write_small_floats(tmp_path):
    pytest.importorskip("yaml")
    (tmp_path / "s.yaml").write_text(
        "cell: {type: categorical, choices: [lstm, gru]}\n"
        "dropout: {type: float, low: 0.0, high: 0.5}\n"
    )
    assert read_space(tmp_path / "s.yaml").describe()[1] == "dropout: float 0..0.5"
    (tmp_path / "bad.yml").write_text("lr: {type: float, low: 1e-4, high: 1.0e-2, log: true}\n")
    with pytest.raises(ValueError, match=r"low and high must be numbers.*write 1\.0e-4"):
        read_space(tmp_path / "bad.yml")


def test_yaml_without_pyyaml_says_to_install_it_or_use_toml(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    (tmp_path / "s.yaml").write_text("cell: {type: categorical, choices: [lstm]}\n")
    with pytest.raises(ValueError, match=r"pip install pyyaml.*TOML"):
        read_space(tmp_path / "s.yaml")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("s.txt", "", r"s\.txt: expected a \.toml, \.json, \.yaml or \.yml file"),
        ("s.toml", "[cell\n", r"s\.toml: not valid TOML"),
        ("s.json", "{", r"s\.json: not valid JSON"),
        ("s.json", "[1, 2]", r"s\.json: expected tables, got \[1, 2\]"),
        ("missing.toml", None, r"missing\.toml: cannot be read"),
    ],
)
def test_a_file_that_is_no_space_is_refused(tmp_path, name, text, message):
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        read_space(tmp_path / name)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"hidden": {"type": "int", "low": 256, "high": 64}}, "low must be <= high"),
        ({"hidden": {"type": "int", "low": 64.0, "high": 256}}, "must be integers"),
        ({"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "log needs low > 0"),
        (
            {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "step": 1e-4}},
            "a step cannot be used with log",
        ),
        ({"hidden": {"type": "int", "low": 64, "high": 100, "step": 64}}, "multiple of step"),
        ({"cell": {"type": "categorical", "choices": []}}, "non-empty list"),
        ({"cell": {"type": "categorical", "choices": ["gru", "gru"]}}, "'gru' is there twice"),
        ({"cutoffs": {"type": "categorical", "choices": [[1, 2]]}}, "strings, numbers"),
        ({"cell": {"type": "categorial", "choices": ["gru"]}}, "type must be one of"),
        ({"hidden": {"type": "int", "low": 1, "hi": 2}}, "unknown key(s) hi for type int"),
        ({"hidden": {"type": "int", "low": 1}}, "needs high"),
        ({"hidden": 128}, "expected a table"),
        (
            {"hidden": {"type": "int", "low": 64, "high": 128, "grid": [64, 96.5]}},
            "grid value 96.5 is not an integer in",
        ),
        (
            {
                "min_lr": {
                    "type": "float",
                    "low": 0.1,
                    "high": 0.5,
                    "when": {"schedule": "cosine"},
                },
                "schedule": {"type": "categorical", "choices": ["cosine", "constant"]},
            },
            "when names 'schedule', which is declared after it: move it above",
        ),
        (
            {"min_lr": {"type": "float", "low": 0.1, "high": 0.5, "when": {"shedule": "cosine"}}},
            "when names 'shedule', which is not in the space",
        ),
        (
            {
                "schedule": {"type": "categorical", "choices": ["cosine", "constant"]},
                "min_lr": {"type": "float", "low": 0.1, "high": 0.5, "when": {"schedule": "step"}},
            },
            "when schedule = step can never hold",
        ),
        (
            {
                "dropout": {"type": "float", "low": 0.0, "high": 0.5},
                "lr": {"type": "float", "low": 0.1, "high": 0.5, "when": {"dropout": 0.1}},
            },
            "'dropout', which is a float",
        ),
        (
            {"min_lr": {"type": "float", "low": 0.1, "high": 0.5, "when": "cosine"}},
            "min_lr: when must be a table of name = value or [values], got 'cosine'",
        ),
        ({}, "the space is empty"),
    ],
)
def test_an_impossible_space_is_refused_naming_the_file_and_parameter(tables, message):
    with pytest.raises(ValueError, match=r"^s\.toml: ") as e:
        parse(tables)
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            {"hiden": {"type": "int", "low": 64, "high": 128}},
            "'hiden' is not an option of the classify model config or of TrainConfig; did you "
            "mean hidden",
        ),
        ({"strings": {"value": True}}, "'strings' is not an option"),  # set by --strings
        (
            {"hidden": {"type": "int", "low": 0, "high": 128}},
            "hidden = 0 (low) makes an invalid classify config: hidden must be a positive",
        ),
        (
            {"lr": {"type": "float", "low": 0.0, "high": 0.1}},
            "lr = 0 (low) makes an invalid classify config: lr must be a number in (0",
        ),
        (
            {"cell": {"type": "categorical", "choices": ["lstm", "transformer"]}},
            "cell = transformer (choice) makes an invalid classify config",
        ),
        (
            {"schedule": {"value": "slanted"}, "warmup": {"type": "int", "low": 0, "high": 9}},
            "warmup = 9 (high) makes an invalid classify config: warmup must be 0 with",
        ),
    ],
)
def test_check_refuses_names_and_values_the_task_cannot_take(tables, message):
    space = parse(tables)
    with pytest.raises(ValueError, match=r"^s\.toml: ") as e:
        space.check(CLASSIFY)
    assert message in str(e.value)


def test_a_conditional_value_is_checked_with_its_condition_held():
    # difference needs the autoregressive mode: checked under mode = autoregressive
    space = parse(
        {
            "mode": {"type": "categorical", "choices": ["direct", "autoregressive"]},
            "difference": {
                "type": "categorical",
                "choices": [False, True],
                "when": {"mode": "autoregressive"},
            },
        }
    )
    space.check(spec("forecast"))


def test_random_search_suggests_a_conditional_parameter_exactly_when_its_condition_holds():
    optuna = pytest.importorskip("optuna")
    space = parse(CONDITIONAL)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        model, train = space.sample(trial)
        study.tell(trial, 0.0)
        cosine = trial.params["schedule"] == "cosine"
        assert ("min_lr" in trial.params) == cosine == ("min_lr" in train)
        assert set(model) == {"cell", "hidden"} and train["steps"] == 50
        assert "steps" not in trial.params  # fixed: never suggested
        CLASSIFY.config(**model)
        CLASSIFY.train_config(**train)
        seen.add(cosine)
    assert seen == {True, False}


@pytest.mark.parametrize("task", [s.name for s in specs()])
def test_every_sampled_config_of_a_default_space_builds(task):
    optuna = pytest.importorskip("optuna")
    s = spec(task)
    space = default_space(s)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        model, train = space.sample(trial)
        study.tell(trial, 0.0)
        s.config(**model)
        s.train_config(**train)


def test_a_fixed_trial_replays_chosen_values_and_skips_what_its_condition_turns_off():
    optuna = pytest.importorskip("optuna")
    space = parse(CONDITIONAL)
    chosen = {"cell": "gru", "hidden": 128, "lr": 1e-3, "schedule": "constant"}
    model, train = space.sample(optuna.trial.FixedTrial(chosen))
    assert model == {"cell": "gru", "hidden": 128}
    assert train == {"lr": 1e-3, "steps": 50, "schedule": "constant"}
    with pytest.raises(ValueError, match="min_lr"):  # cosine turns min_lr on: it must be given
        space.sample(optuna.trial.FixedTrial(chosen | {"schedule": "cosine"}))


class Lowest:
    """A trial-like object without Optuna: every number at its lower bound."""

    def suggest_float(self, name, low, high, *, step=None, log=False):
        return low


def test_a_condition_may_test_a_fixed_parameter():
    space = parse({"schedule": {"value": "cosine"}, "min_lr": CONDITIONAL["min_lr"]})
    assert space.sample(Lowest()) == ({}, {"schedule": "cosine", "min_lr": 0.01})


def test_the_grid_lists_every_searched_parameters_values():
    space = parse(
        {
            "cell": {"type": "categorical", "choices": ["lstm", "gru"]},
            "layers": {"type": "int", "low": 1, "high": 3},
            "hidden": {"type": "int", "low": 64, "high": 192, "step": 64},
            "dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
            "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "grid": [1e-3, 1e-2]},
            "steps": {"value": 50},
        }
    )
    assert space.grid() == {
        "cell": ["lstm", "gru"],
        "layers": [1, 2, 3],
        "hidden": [64, 128, 192],
        "dropout": [0.0, 0.1, 0.2, 0.3],
        "lr": [1e-3, 1e-2],
    }
    assert "lr: float 0.0001..0.01, log, grid 0.001, 0.01" in space.describe()


@pytest.mark.parametrize(
    ("name", "table", "message"),
    [
        ("lr", {"type": "float", "low": 1e-4, "high": 1e-2}, "give it a step or a grid = [...]"),
        ("steps", {"type": "int", "low": 1, "high": 20_001}, "20001 values are over 10000"),
    ],
)
def test_a_parameter_without_grid_values_is_refused(name, table, message):
    with pytest.raises(ValueError, match=rf"^s\.toml: {name}") as e:
        parse({name: table}).grid()
    assert message in str(e.value)


def test_a_grid_search_covers_the_full_product_and_skips_conditions_that_fail():
    optuna = pytest.importorskip("optuna")
    space = parse(
        {
            "schedule": {"type": "categorical", "choices": ["cosine", "constant"]},
            "min_lr": {
                "type": "float",
                "low": 0.1,
                "high": 0.2,
                "step": 0.1,
                "when": {"schedule": "cosine"},
            },
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space.grid(), seed=0))
    study.optimize(lambda t: float(len(space.sample(t)[1])), n_trials=10)
    params = sorted(json.dumps(t.params, sort_keys=True) for t in study.trials)
    # 2 x 2 grid points; "constant" runs twice with the same (min_lr-less) configuration
    assert len(study.trials) == 4
    assert len(set(params)) == 3 and params.count('{"schedule": "constant"}') == 2


def test_a_param_built_in_python_normalises_its_condition():
    p = Param("min_lr", "float", low=0, high=1, when={"schedule": ["cosine", "step"]})
    assert p.when == (("schedule", ("cosine", "step")),) and p.low == 0.0
    assert not p.holds({"schedule": "constant"}) and p.holds({"schedule": "step"})
    assert not Param("x", "float", low=0, high=1, when={"flag": True}).holds({"flag": 1})


def test_every_task_has_a_checked_default_space_and_a_metric_with_a_direction():
    for s in specs():
        space = default_space(s)
        assert any(p.when for p in space.params), f"{s.name}: no conditional parameter"
        assert monitor_sign(s.objective) in (1, -1)
    assert spec("classify").objective == "val_accuracy" == spec("tag").objective


def test_no_model_config_shares_a_field_name_with_train_config():
    # Space.split sends a value to TrainConfig by its name alone
    train = {f.name for f in fields(TrainConfig)}
    for s in specs():
        assert not {f.name for f in fields(s.config)} & train, s.name


def test_a_task_without_a_default_space_asks_for_a_file():
    bare = replace(CLASSIFY, space={})
    with pytest.raises(ValueError, match="task classify has no default search space: give a"):
        default_space(bare)
