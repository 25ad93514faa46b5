"""What `elman train` and `elman resume` print when a run ends: its last validation figures,
in the task's units (``TaskSpec.validation``), or why nothing was trained."""

from __future__ import annotations

from pathlib import Path

from elman.train.checkpoint import read_meta, reading
from elman.train.distributed import is_main


def validation_line(metrics: dict) -> str:
    """The figures every task logs (``val_*``), as ``name value`` pairs."""
    return ", ".join(f"{k[4:]} {v:.4f}" for k, v in metrics.items() if k.startswith("val_"))


def report(metrics: dict, out: Path, spec) -> None:
    """Print the last validation figures of a run of ``spec``'s task (on the main process
    only); a run that had nothing left to train (finished, or resumed to a step count it has
    reached) says so."""
    if not is_main():
        return
    if "val_loss" not in metrics:
        print(nothing_to_do(out), flush=True)
        return
    print(f"validation: {spec.validation(metrics)}; checkpoints in {out}", flush=True)


def nothing_to_do(out: Path) -> str:
    """Why resuming the run in ``out`` trained no step: it is where it was asked to go."""
    path = Path(out) / "last.safetensors"
    if not path.exists():  # a fresh run stopped before its first step
        raise ValueError(
            f"no step was trained, so {out} holds no checkpoint (is --time-limit shorter "
            "than one step?)"
        )
    meta = read_meta(path)
    with reading(path):
        done, total = int(meta["position"]["step"]), int(meta["train"]["steps"])
    return (
        f"nothing to do: the run is at step {done} (of {total}); pass --steps M with "
        f"M > {done} to train further"
    )


__all__ = ["nothing_to_do", "report", "validation_line"]
