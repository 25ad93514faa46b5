"""What a search leaves behind: the table of trials (printed and as CSV), the best
configuration as a file `elman train TASK --config FILE` reads, Optuna's plots, the best
trial's test figure, and a JSON summary."""

from __future__ import annotations

import csv
import json
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from elman.fields import documented
from elman.files import atomic_path
from elman.tasks.configfile import write_config
from elman.tasks.registry import load_run
from elman.tasks.registry import spec as task_spec
from elman.train.config import TrainConfig
from elman.tune.trial import Setup, base_namespace, one_line

COLUMNS = ("trial", "state", "value", "seconds", "params", "note")


def rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, duration, parameters, why it ended early."""
    out = []
    for t in study.get_trials(deepcopy=False):
        seconds = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        note = t.user_attrs.get("error") or t.user_attrs.get("pruned") or ""
        out.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "seconds": None if seconds is None else round(seconds, 1),
                "params": t.params,
                "note": note,
            }
        )
    return out


def table(found: list[dict[str, Any]]) -> str:
    """The trials as aligned text."""

    def cell(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key == "value":
            return f"{value:.5g}"
        if key == "params":
            return " ".join(f"{k}={_short(v)}" for k, v in value.items())
        return str(value)

    lines = [[cell(k, r[k]) for k in COLUMNS] for r in found]
    widths = [max([len(c)] + [len(line[i]) for line in lines]) for i, c in enumerate(COLUMNS)]
    text = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    text += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(s.rstrip() for s in text)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_csv(found: list[dict[str, Any]], path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in found:
            writer.writerow(r | {"params": json.dumps(r["params"])})
    return path


def best_config(setup: Setup, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """Every model and training field of the best trial: the study's starting values with
    the trial's sampled ones (what `elman train TASK --config` then trains)."""
    spec = task_spec(setup.task)
    args = base_namespace(spec, setup.values)
    names = [f.name for f in fields(spec.config)] + [f.name for f in documented(TrainConfig)]
    values = {n: getattr(args, n) for n in names if hasattr(args, n)}
    values |= trial.params | {"monitor": setup.objective}  # what picked its checkpoint
    return {k: v for k, v in values.items() if v is not None}


def plots(study: optuna.Study, out: Path) -> dict[str, str]:
    """Optuna's optimisation history and parameter importances as PNGs (what could be drawn;
    importances need two finished trials that differ)."""
    try:
        from optuna.visualization import matplotlib as vis
    except ImportError:
        return {}
    drawn = {}
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    wanted = {"history": vis.plot_optimization_history}
    if len(done) >= 2 and any(t.params != done[0].params for t in done):
        wanted["importance"] = vis.plot_param_importances
    for name, draw in wanted.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                axes = draw(study)
            except (ValueError, RuntimeError, ImportError):
                continue
        figure = axes.figure
        path = out / f"{name}.png"
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt  # optuna draws with pyplot: release its figure

        plt.close(figure)
        drawn[name] = str(path)
    return drawn


def test_scores(setup: Setup, number: int) -> dict[str, Any]:
    """The best trial's run scored once on its task's test split (never seen by the search),
    or why that cannot be done."""
    folder = setup.run_dir(number)  # with cross-validation, fold 0's model
    try:
        return {"scores": load_run(folder).test()}
    except (ValueError, OSError) as e:
        return {"unavailable": one_line(e)}


def summarise(study: optuna.Study, setup: Setup) -> dict[str, Any]:
    """Write trials.csv, best.toml, the plots and summary.json into the study's folder;
    the summary."""
    out = Path(setup.out)
    found = rows(study)
    write_csv(found, out / "trials.csv")
    states = {s.name.lower(): sum(r["state"] == s.name.lower() for r in found) for s in TrialState}
    summary: dict[str, Any] = {
        "task": setup.task,
        "objective": setup.objective,
        "direction": study.direction.name.lower(),
        "trials": {k: v for k, v in states.items() if v},
        "space": setup.space.describe(),
    }
    try:
        best = study.best_trial
    except ValueError:
        best = None
    if best is not None:
        config = out / "best.toml"
        comment = f"elman tune: trial {best.number}, {setup.objective} {best.value:.6g}"
        write_config(config, best_config(setup, best), comment=comment)
        summary["best"] = {
            "trial": best.number,
            "value": best.value,
            "params": best.params,
            "run": str(setup.run_dir(best.number)),
            "config": str(config),
        }
        summary["test"] = test_scores(setup, best.number)
    summary["plots"] = plots(study, out)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return summary


__all__ = ["best_config", "plots", "rows", "summarise", "table", "test_scores", "write_csv"]
