"""`elman tune` end to end on a tiny classifier: Python and CLI, pruning, failing trials,
two processes on one storage, and a study killed with kill -9 that resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from elman.cli import main  # noqa: E402
from elman.tasks.classify import command as classify_command  # noqa: E402
from elman.train.checkpoint import read_meta  # noqa: E402
from elman.tune import tune  # noqa: E402
from elman.tune.space import Space  # noqa: E402
from elman.tune.study import Plan, open_study, work  # noqa: E402
from elman.tune.trial import Setup  # noqa: E402

ROWS = [("great film", "pos"), ("awful plot", "neg"), ("a great plot", "pos")] * 4
ROWS += [("the awful film", "neg")] * 4
SPACE = """
[hidden]
type = "int"
low = 4
high = 12
[cell]
type = "categorical"
choices = ["lstm", "gru"]
[weight_dropout]
type = "float"
low = 0.0
high = 0.3
when = { cell = "lstm" }
"""


@pytest.fixture()
def data(tmp_path):
    table = "text,label\n" + "".join(f"{t},{y}\n" for t, y in ROWS)
    (tmp_path / "train.csv").write_text(table)
    (tmp_path / "test.csv").write_text("text,label\ngreat film,pos\nawful plot,neg\n")
    (tmp_path / "space.toml").write_text(SPACE)
    return tmp_path


def values(data: Path, steps: int = 8) -> dict:
    return {
        "train_file": str(data / "train.csv"),
        "test": str(data / "test.csv"),
        "embedding": 4,
        "batch_size": 4,
        "steps": steps,
        "eval_every": 4,
        "lr": 0.03,
    }


def argv(data: Path, out: Path, *extra: str, steps: int = 8) -> list[str]:
    common = ["--train", str(data / "train.csv"), "--test", str(data / "test.csv")]
    sizes = ["--embedding", "4", "--batch-size", "4", "--lr", "0.03", "--eval-every", "4"]
    return [
        "tune", "classify", *common, *sizes, "--steps", str(steps),
        "--space", str(data / "space.toml"), "--out", str(out), "--threads", "1",
        "--no-progress", *extra,
    ]  # fmt: skip


def test_a_study_runs_through_python_and_its_best_config_trains(data, capsys):
    study = tune("classify", values(data), data / "space.toml", trials=3, out=data / "s", threads=1)
    assert len(study.trials) == 3
    for t in study.trials:  # the conditional parameter exactly when its condition holds
        assert ("weight_dropout" in t.params) == (t.params["cell"] == "lstm")
    summary = json.loads((data / "s" / "summary.json").read_text())
    assert summary["objective"] == "val_accuracy" and summary["direction"] == "maximize"
    assert summary["test"]["scores"]["examples"] == 2  # scored once on the test file
    kept = sorted(p.name for p in (data / "s" / "trials").iterdir())
    assert kept == [f"{summary['best']['trial']:04d}"]  # keep="best"
    assert (data / "s" / "trials.csv").read_text().count("\n") == 4
    best = data / "s" / "best.toml"
    out = data / "retrained"
    common = ["--train", str(data / "train.csv"), "--config", str(best), "--out", str(out)]
    assert main(["train", "classify", *common, "--no-progress"]) == 0
    trained = read_meta(out / "last.safetensors")["task_config"]["model"]
    assert trained["hidden"] == summary["best"]["params"]["hidden"]


def test_the_cli_prints_the_trials_and_the_best(data, capsys):
    out = data / "cli"
    assert main(argv(data, out, "--trials", "2", "--keep", "all")) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == [
        "trial",
        "state",
        "value",
        "seconds",
        "params",
        "note",
    ]
    assert "best: trial" in printed and "test (once, after the search)" in printed
    assert len(list((out / "trials").iterdir())) == 2  # keep="all"
    assert main(argv(data, out, "--trials", "3")) == 0  # the same study, one trial more
    assert "\n2 " in capsys.readouterr().out


def test_every_task_gives_a_trial_its_train_options():
    from elman.tasks.registry import specs
    from elman.tune.trial import base_namespace

    for found in specs():
        args = base_namespace(found, {"seed": 3})
        assert args.seed == 3 and callable(args.train), found.name
    with pytest.raises(ValueError, match="has no option"):
        base_namespace(found, {"hiden": 3})


def test_bad_search_options_are_refused_before_any_trial(data, capsys):
    bad = data / "bad.toml"
    bad.write_text('[hiden]\ntype = "int"\nlow = 1\nhigh = 4\n')
    assert main(argv(data, data / "b1", "--space", str(bad))) == 2
    assert "hidden" in capsys.readouterr().err  # the closest name
    assert main(argv(data, data / "b2", "--trials", "0")) == 2
    assert "trials must be an integer >= 1" in capsys.readouterr().err
    assert main(argv(data, data / "b3", "--storage", "study.txt")) == 2
    assert "expected a journal file" in capsys.readouterr().err
    assert not (data / "b1" / "trials").exists()


def _setup(data: Path, out: Path, objective: str = "val_accuracy") -> Setup:
    space = Space.parse(tomllib.loads(SPACE), "the test space")
    return Setup("classify", values(data, steps=16), space, objective, str(out), "all")


def test_a_hopeless_trial_is_pruned_early(data):
    plan = Plan(trials=4, sampler="random", pruner="median")
    setup = _setup(data, data / "p", objective="val_loss")  # a loss that cannot tie
    study = open_study(plan, setup)
    for _ in range(3):
        study.enqueue_trial({"hidden": 8, "cell": "gru"})
    study.enqueue_trial({"hidden": 4, "cell": "gru"}, user_attrs={"hopeless": True})
    original = classify_command.train_classify

    def slow_learner(a):  # the hopeless trial cannot learn: rate ~0
        if a.hidden == 4:
            a.lr = 1e-9
        return original(a)

    classify_command.train_classify = slow_learner
    try:
        work(plan, setup)
    finally:
        classify_command.train_classify = original
    last = study.trials[-1]
    assert last.state == optuna.trial.TrialState.PRUNED, last.user_attrs
    assert "pruned at step" in last.user_attrs["pruned"]
    step = read_meta(setup.trial_dir(last.number) / "last.safetensors")["position"]["step"]
    assert step < 16


def test_a_failing_trial_is_recorded_and_the_study_goes_on(data, monkeypatch):
    original = classify_command.train_classify

    def flaky(a):
        if a.hidden == 5:
            raise ValueError("hidden 5 is cursed")
        return original(a)

    monkeypatch.setattr(classify_command, "train_classify", flaky)
    plan = Plan(trials=3, sampler="random")
    setup = _setup(data, data / "f")
    study = open_study(plan, setup)
    study.enqueue_trial({"hidden": 5, "cell": "gru"})
    work(plan, setup)
    states = [t.state.name for t in study.trials]
    assert states[0] == "FAIL" and states[1:] == ["COMPLETE", "COMPLETE"]
    assert study.trials[0].user_attrs["error"] == "ValueError: hidden 5 is cursed"


def test_cross_validation_searches_on_the_mean_of_every_folds_best(data):
    from elman.tune.trial import best_value

    cv_values = values(data) | {"valid_fraction": 0.5}
    study = tune("classify", cv_values, data / "space.toml", trials=2, out=data / "cv",
                 threads=1, cv=2, keep="all", objective="val_loss")  # fmt: skip
    for t in study.trials:
        folder = data / "cv" / "trials" / f"{t.number:04d}"
        folds = [best_value(folder / f"fold{k}", "val_loss") for k in (0, 1)]
        assert folds[0] != folds[1]  # two different validation splits
        assert t.value == pytest.approx(sum(folds) / 2)
        assert [v for _, v in sorted(t.intermediate_values.items())] == pytest.approx(
            [folds[0], t.value]
        )
    summary = json.loads((data / "cv" / "summary.json").read_text())
    assert summary["best"]["run"].endswith("fold0") and "scores" in summary["test"]


def test_cross_validation_needs_a_task_that_can_choose_its_validation_fold(data):
    with pytest.raises(ValueError, match="no --valid-fold"):
        tune("charlm", {}, None, trials=1, out=data / "lm", cv=3)
    with pytest.raises(ValueError, match="cv must be an integer >= 1"):
        tune("classify", values(data), None, trials=1, out=data / "c0", cv=0)


class _Doomed:
    """A trial whose pruner always says stop."""

    def __init__(self):
        self.reported = []

    def report(self, value, step):
        self.reported.append(step)

    def should_prune(self):
        return True


def test_the_pruner_waits_for_the_reports_it_was_told_to():
    from elman.tune.trial import Outcome, Reporter

    trial = _Doomed()
    report = Reporter(trial, "val_loss", after=3)
    report(10, {"val_loss": 1.0})
    report(20, {"val_loss": float("nan")})  # not a report: nothing to judge
    report(30, {"val_accuracy": 0.5})
    report(40, {"val_loss": 0.9})
    with pytest.raises(Outcome, match="pruned at step 50"):
        report(50, {"val_loss": 0.8})
    assert trial.reported == [10, 40, 50]


def _elman(args: list[str]) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    code = "import sys; from elman.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.slow
def test_two_processes_share_one_study_without_duplicate_numbers(data):
    storage = str(data / "shared.journal")
    extra = ["--trials", "6", "--storage", storage, "--study", "s", "--keep", "all"]
    procs = [_elman(argv(data, data / f"w{k}", *extra, "--sampler-seed", str(k))) for k in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="s", storage=_journal(storage))
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) and 6 <= len(numbers) <= 7  # one may overshoot
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 2  # both took trials


def _journal(path: str):
    from elman.tune.study import storage_of

    return storage_of(path, Path(path).parent)


@pytest.mark.slow
def test_a_study_killed_with_kill_9_resumes_losing_only_the_running_trial(data):
    out = data / "k"
    args = argv(data, out, "--trials", "3", "--keep", "all", steps=200)
    victim = _elman(args)
    journal = out / "study.journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill while trial 1 trains
        time.sleep(0.2)
        if journal.exists() and _running(journal, number=1):
            break
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    resumed = _elman(args)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    study = optuna.load_study(study_name="classify", storage=_journal(str(journal)))
    killed = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert [t.number for t in killed] == [1]
    assert killed[0].state.name == "FAIL"
    retried = [t for t in study.trials if t.user_attrs.get("retry_of") == 1]
    assert len(retried) == 1 and retried[0].params == killed[0].params
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(finished) == 3 and study.trials[0].state.name == "COMPLETE"  # trial 0 kept


def _running(journal: Path, number: int) -> bool:
    try:
        study = optuna.load_study(study_name="classify", storage=_journal(str(journal)))
    except KeyError:  # the journal is there, the study not yet
        return False
    # with its values sampled: a trial killed before that has nothing to lose or retry
    return any(t.number == number and t.state.name == "RUNNING" and t.params for t in study.trials)
