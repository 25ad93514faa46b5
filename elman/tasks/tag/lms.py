"""The character LM runs a tagger's contextual string embeddings come from (`elman train tag
--strings FORWARD_RUN BACKWARD_RUN`): opened, checked to be one forward and one backward
character LM, and described for the tagger's checkpoint, which keeps their weights, configs
and vocabularies (so it needs the runs no more) and where they came from: each run's path,
checkpoint, step and a sha256 of its weights."""

from __future__ import annotations

from pathlib import Path

from elman.tasks.tag.strings import ContextualStrings
from elman.train.checkpoint import CheckpointError

OPTION = "--strings"


def open_charlm(path: str | Path):
    """The character LM run in ``path`` (best checkpoint, else last); another task's run is
    refused naming it."""
    from elman.tasks.lm.run import CharRun  # here: the LM runs import every LM module
    from elman.tasks.registry import checkpoint_of, task_of

    found = task_of(path)
    if found != "charlm":
        raise ValueError(
            f"{OPTION}: {path} holds a {found} run; contextual string embeddings need "
            "character LM runs (`elman train charlm TEXT`, the backward one with --reverse)"
        )
    return CharRun.open(path, checkpoint_of(path).stem)


def source_of(run) -> dict:
    """Where an LM came from: its run, checkpoint, step, direction and weights' sha256."""
    from elman.tasks.transfer import weights_digest

    return {
        "path": str(Path(run.path).resolve()),
        "checkpoint": run.which,
        "step": run.meta.get("step", run.meta.get("position", {}).get("step")),
        "backward": run.backward,
        "sha256": weights_digest(run.model.state_dict()),
    }


def load_strings(paths: list[str | Path] | tuple[str | Path, ...]) -> ContextualStrings:
    """The frozen pair of the two character LM runs in ``paths`` (a forward and a backward
    one, in either order). Their hidden sizes, cells and vocabularies may differ: the
    features are their concatenation."""
    if len(paths) != 2:
        raise ValueError(
            f"{OPTION}: expected two character LM runs (a forward and a backward one), got "
            f"{len(paths)}"
        )
    runs = [open_charlm(p) for p in paths]
    if runs[0].backward == runs[1].backward:
        way = "backward" if runs[0].backward else "forward"
        hint = "train one with --reverse" if way == "forward" else "train one without --reverse"
        raise ValueError(
            f"{OPTION}: the tagger needs a forward and a backward LM: both {paths[0]} and "
            f"{paths[1]} are {way} ({hint})"
        )
    forward, backward = sorted(runs, key=lambda r: r.backward)
    return ContextualStrings(
        forward.model,
        backward.model,
        forward.vocab,
        backward.vocab,
        (source_of(forward), source_of(backward)),
    )


def check_weights(strings: ContextualStrings, path: str | Path) -> None:
    """The LM weights a tagger's checkpoint holds must be those its header's sources hash
    (a checkpoint edited, or assembled from two runs, is refused)."""
    from elman.tasks.transfer import weights_digest

    lms = (strings.forward_lm, strings.backward_lm)
    for side, lm, source in zip(("forward", "backward"), lms, strings.sources, strict=True):
        want = source.get("sha256")
        if want is not None and weights_digest(lm.state_dict()) != want:
            raise CheckpointError(
                f"checkpoint {str(path)!r}: its {side} LM's weights are not those its header "
                f"records (sha256 {want[:12]}...); the run is damaged"
            )


__all__ = ["check_weights", "load_strings", "open_charlm", "source_of"]
