"""Pieces the tasks' default search spaces share (``TaskSpec.space``, in a space file's form,
read by ``elman.tune.space``)."""

from __future__ import annotations

# the schedule's floor only matters for the cosine schedule
SCHEDULE = {
    "schedule": dict(type="categorical", choices=["cosine", "constant"]),
    "min_lr": dict(type="float", low=0.01, high=0.5, log=True, when={"schedule": "cosine"}),
}

# the AWD-LSTM regularisers every recurrent encoder takes (``elman.tasks.awd``)
REGULARIZERS = {
    "weight_dropout": dict(type="float", low=0.0, high=0.5),
    "locked_dropout": dict(type="categorical", choices=[False, True]),
}


def optimizer(low: float = 3e-4, high: float = 1e-2) -> dict:
    """Adam or AdamW at a log-uniform rate in [low, high]; weight decay only with AdamW
    (decoupled: under Adam it keeps the default 0); then the schedule."""
    return {
        "optimizer": dict(type="categorical", choices=["adam", "adamw"]),
        "lr": dict(type="float", low=low, high=high, log=True),
        "weight_decay": dict(
            type="float", low=1e-3, high=0.3, log=True, when={"optimizer": "adamw"}
        ),
        **SCHEDULE,
    }


__all__ = ["REGULARIZERS", "SCHEDULE", "optimizer"]
