"""`elman train TASK --config FILE`: option values from a TOML, JSON or YAML file, beneath the
command line and above the preset; every mistake in the file is one line and exit status 2;
`write_config` writes what `--config` reads back."""

from __future__ import annotations

import argparse
import json
import tomllib

import pytest

from elman.cli import main
from elman.data.text import bundled_corpus_path, read_text
from elman.tasks.configfile import read_config, write_config
from elman.tasks.options import integer, number
from elman.train.checkpoint import read_meta

TINY = {"embedding": 8, "batch-size": 4, "seq_len": 16, "steps": 3, "eval_every": 3}
QUIET = ["--no-progress", "--sample-length", "0"]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "t.txt"
    path.write_text(read_text(bundled_corpus_path())[:5000], encoding="utf-8")
    return path


def _meta(out) -> tuple[dict, dict]:
    meta = read_meta(out / "last.safetensors")
    return meta["task_config"]["model"], meta["train"]


def _charlm(text_file, out, *more: str) -> int:
    return main(["train", "charlm", str(text_file), "--out", str(out), *QUIET, *more])


def test_a_toml_file_sets_options_in_sections_and_the_command_line_wins(tmp_path, text_file):
    config = tmp_path / "c.toml"
    lines = ['cell = "lstm"', "[model]", "hidden = 12", "weight-dropout = 0.2", "dropout = 0.3"]
    lines += ["[train]", "lr = 0.002"] + [f"{k} = {v}" for k, v in TINY.items()]
    config.write_text("\n".join(lines) + "\n")
    assert _charlm(text_file, tmp_path / "r", "--config", str(config), "--dropout", "0") == 0
    model, train = _meta(tmp_path / "r")
    assert (model["cell"], model["hidden"], model["weight_dropout"]) == ("lstm", 12, 0.2)
    assert (train["lr"], model["batch_size"], train["steps"]) == (0.002, 4, 3)
    assert model["dropout"] == 0.0  # the command line's, not the file's 0.3


@pytest.mark.parametrize("preset_in_file", [False, True])
def test_the_file_stands_above_the_preset_and_below_the_command_line(
    tmp_path, text_file, preset_in_file
):
    config = tmp_path / "c.toml"
    values = TINY | {"hidden": 8, "lr": 0.5, "weight_dropout": 0.2, "ar": 1.0}
    write_config(config, values | ({"preset": "awd"} if preset_in_file else {}))
    preset = [] if preset_in_file else ["--preset", "awd"]
    assert _charlm(text_file, tmp_path / "r", *preset, "--config", str(config), "--ar", "0.5") == 0
    model, train = _meta(tmp_path / "r")
    assert (train["lr"], model["weight_dropout"]) == (0.5, 0.2)  # the file over the preset
    assert model["ar"] == 0.5  # the command line over both
    assert (train["optimizer"], model["tar"]) == ("nt-asgd", 1.0)  # the preset's, untouched


def test_a_json_file_gives_data_options_by_their_option_names(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("body,label\n" + "".join(f"a b {i % 3},{i % 2}\n" for i in range(20)))
    config = tmp_path / "c.json"
    data = {"train": str(table), "text-column": "body", "no_progress": True}
    config.write_text(json.dumps({"data": data, "hidden": 4, "embedding": 4, "steps": 2}))
    assert main(["train", "classify", "--config", str(config), "--out", str(tmp_path / "r")]) == 0
    meta = read_meta(tmp_path / "r" / "last.safetensors")["task_config"]
    assert meta["model"]["hidden"] == 4 and meta["source"]["text_column"] == "body"


def test_write_config_round_trips_through_the_command_line(tmp_path, text_file):
    config = tmp_path / "best.toml"
    values = TINY | {"cell": "gru", "hidden": 10, "lr": 3e-3, "locked_dropout": True}
    assert write_config(config, values, comment="best trial 7\nval_loss 1.5") == config
    assert config.read_text().startswith("# best trial 7\n# val_loss 1.5\n")
    assert [p.name for p in tmp_path.iterdir()] == ["best.toml"]  # no temporary left
    assert _charlm(text_file, tmp_path / "r", "--config", str(config)) == 0
    model, train = _meta(tmp_path / "r")
    assert (model["cell"], model["hidden"], model["locked_dropout"]) == ("gru", 10, True)
    assert train["lr"] == 3e-3 and train["eval_every"] == 3


BAD = [
    ("c.toml", "hiden = 12\n", ["'hiden' is not an option of `elman train charlm`", "hidden"]),
    ("c.toml", 'hidden = "big"\n', ["hidden = 'big'", "expected an integer"]),
    ("c.toml", 'cell = "xlstm"\n', ["cell = 'xlstm'", "expected one of", "gru"]),
    ("c.toml", "locked_dropout = 1\n", ["locked_dropout = 1", "expected true or false"]),
    ("c.toml", 'out = "elsewhere"\n', ["'out' cannot be set", "command line"]),
    ("c.toml", "overwrite = true\n", ["'overwrite' cannot be set", "--overwrite"]),
    ("c.toml", 'config = "other.toml"\n', ["'config' cannot be set"]),
    ("c.toml", 'text = ["t.txt"]\n', ["'text' is a positional argument"]),
    ("c.toml", "ar = 1.0\n[model]\nar = 2.0\n", ["'ar' is given twice"]),
    ("c.toml", "hidden = 12\nlr = \n", ["not valid TOML", "line 2"]),
    ("c.json", '{"hidden": 12,\n "lr": }', ["not valid JSON", "line 2"]),
    ("c.json", "[1, 2]", ["expected a table of option names"]),
    ("c.ini", "hidden = 12\n", ["expected a .toml, .json, .yaml or .yml file"]),
]


@pytest.mark.parametrize(("name", "text", "said"), BAD, ids=[b[1][:14] for b in BAD])
def test_a_bad_file_is_one_line_naming_the_file_and_the_problem(
    tmp_path, text_file, capsys, name, text, said
):
    config = tmp_path / name
    config.write_text(text)
    assert _charlm(text_file, tmp_path / "r", "--config", str(config)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--config {config}" in err
    assert all(part in err for part in said), err
    assert not (tmp_path / "r").exists()  # refused before anything trained


def test_a_missing_file_is_named(tmp_path, text_file, capsys):
    assert _charlm(text_file, tmp_path / "r", "--config", str(tmp_path / "no.toml")) == 2
    assert (
        capsys.readouterr().err == f"elman: error: --config {tmp_path / 'no.toml'}: no such file\n"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="elman train toy")
    p.add_argument("data")
    p.add_argument("--levels", type=number, nargs="*", default=())
    p.add_argument("--target", nargs="+")
    p.add_argument("--strings", dest="pair", nargs=2)
    p.add_argument("--lr", type=number, default=1.0)
    p.add_argument("--steps", type=integer, default=1)
    p.add_argument("--tie", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--quiet", action="store_true")
    return p


def test_values_convert_as_argparse_would(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        'levels = [0.1, 1, "0.9"]\ntarget = ["y"]\nstrings = ["a", "b"]\n'
        'lr = "1e-3"\nsteps = 4\ntie = true\nquiet = false\n'
    )
    assert read_config(config, _parser()) == {
        "levels": [0.1, 1.0, 0.9],
        "target": ["y"],
        "pair": ["a", "b"],
        "lr": 0.001,
        "steps": 4,
        "tie": True,
        "quiet": False,
    }


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("levels = 0.5", "expected a list"),
        ("target = []", "expected a list of at least one value"),
        ("strings = ['a']", "expected a list of 2 values"),
        ("steps = 2.5", "expected an integer"),
        ("steps = true", "expected an integer"),
        ("lr = 1e39", "float32's range"),
        ("target = [1]", "expected a string"),
        ("no-tie = true", "'no-tie' is not an option"),
    ],
)
def test_values_of_the_wrong_kind_are_refused(tmp_path, line, said):
    config = tmp_path / "c.toml"
    config.write_text(line + "\n")
    with pytest.raises(ValueError, match=said):
        read_config(config, _parser())


def test_yaml_is_read_with_pyyaml(tmp_path):
    pytest.importorskip("yaml")
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  lr: 1e-3  # YAML 1.1 reads this as a string\n  steps: 2\n")
    assert read_config(config, _parser()) == {"lr": 0.001, "steps": 2}
    config.write_text("lr: [1\n")
    with pytest.raises(ValueError, match=r"not valid YAML: .*\(at line 2"):
        read_config(config, _parser())


def test_write_config_escapes_strings_and_refuses_what_toml_cannot_hold(tmp_path):
    path = tmp_path / "c.toml"
    odd = 'a "quoted"\\path\nwith\ttabs\x7f and é'
    write_config(path, {"s": odd, "weird key": [1, 2.5, True, "x"], "big": 2**63 - 1})
    assert tomllib.loads(path.read_text()) == {
        "s": odd,
        "weird key": [1, 2.5, True, "x"],
        "big": 2**63 - 1,
    }
    for value, said in [
        (None, "TOML has no null"),
        ({"a": 1}, "expected a bool, number, string"),
        ([[1]], "expected a bool, number, string"),
    ]:
        with pytest.raises(TypeError, match=said):
            write_config(path, {"k": value})
    with pytest.raises(ValueError, match="expected a finite number"):
        write_config(path, {"lr": float("nan")})
    with pytest.raises(ValueError, match="expected a 64-bit integer"):
        write_config(path, {"steps": 2**63})
    with pytest.raises(ValueError, match="'out' cannot be set"):
        write_config(path, {"out": "runs/x"})


def test_init_from_in_the_file_derives_the_sizes_and_a_contradicting_size_is_refused(
    tmp_path, text_file, capsys
):
    lm = tmp_path / "lm"
    lm_sizes = ["--cell", "gru", "--hidden", "12", "--layers", "1", "--steps", "2"]
    assert _charlm(text_file, lm, *lm_sizes, "--batch-size", "4", "--seq-len", "16") == 0
    table = tmp_path / "t.csv"
    table.write_text("text,label\n" + "".join(f"a b {i % 3},{i % 2}\n" for i in range(20)))
    config = tmp_path / "c.toml"
    start = {"init_from": [str(lm)], "train": str(table), "steps": 2, "no_progress": True}
    write_config(config, start | {"dropout": 0.1})
    argv = ["train", "classify", "--config", str(config), "--out"]
    assert main([*argv, str(tmp_path / "c")]) == 0
    model, _ = _meta(tmp_path / "c")
    assert (model["cell"], model["hidden"], model["dropout"]) == ("gru", 12, 0.1)
    write_config(config, start | {"hidden": 16})  # the file is explicit: refused, not replaced
    capsys.readouterr()
    assert main([*argv, str(tmp_path / "d")]) == 2
    assert "hidden 16 (the LM's is 12)" in capsys.readouterr().err
