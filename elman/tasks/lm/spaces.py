"""The default search spaces of `elman tune charlm` and `elman tune wordlm` (a space file's
form, see ``elman.tune.space``): sizes a CPU trains in minutes, the AWD-LSTM regularisers and
the optimiser. NT-ASGD is left out: it wants rates near 30, another range than Adam's."""

from __future__ import annotations

# the schedule's floor only matters for the cosine schedule
SCHEDULE = {
    "schedule": dict(type="categorical", choices=["cosine", "constant"]),
    "min_lr": dict(type="float", low=0.01, high=0.5, log=True, when={"schedule": "cosine"}),
}

# AdamW with decoupled weight decay stays (``CHARLM.train_defaults``): under plain Adam its
# default decay of 0.1 would be an L2 pull far too strong
CHARLM_SPACE = {
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "hidden": dict(type="int", low=128, high=512, step=128),
    "layers": dict(type="int", low=1, high=3),
    "embedding": dict(type="int", low=32, high=128, step=32),
    "dropout": dict(type="float", low=0.0, high=0.5),
    "embed_dropout": dict(type="float", low=0.0, high=0.3),
    "weight_dropout": dict(type="float", low=0.0, high=0.5),
    "locked_dropout": dict(type="categorical", choices=[False, True]),
    "batch_size": dict(type="categorical", choices=[16, 32, 64]),
    "seq_len": dict(type="categorical", choices=[64, 128, 256]),
    "lr": dict(type="float", low=5e-4, high=1e-2, log=True),
    "weight_decay": dict(type="float", low=0.01, high=0.3, log=True),
    **SCHEDULE,
}

# weight decay only with AdamW (decoupled); under Adam it keeps the default 0
WORDLM_SPACE = {
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "embedding": dict(type="int", low=128, high=512, step=128),
    "hidden": dict(type="int", low=128, high=512, step=128),
    "layers": dict(type="int", low=1, high=3),
    "dropout": dict(type="float", low=0.0, high=0.5),
    "embed_dropout": dict(type="float", low=0.0, high=0.5),
    "token_dropout": dict(type="float", low=0.0, high=0.2),
    "weight_dropout": dict(type="float", low=0.0, high=0.5),
    "locked_dropout": dict(type="categorical", choices=[False, True]),
    "ar": dict(type="float", low=0.0, high=2.0),
    "tar": dict(type="float", low=0.0, high=2.0),
    "batch_size": dict(type="categorical", choices=[16, 32, 64]),
    "seq_len": dict(type="categorical", choices=[35, 70]),
    "optimizer": dict(type="categorical", choices=["adam", "adamw"]),
    "lr": dict(type="float", low=5e-4, high=1e-2, log=True),
    "weight_decay": dict(type="float", low=1e-3, high=0.3, log=True, when={"optimizer": "adamw"}),
    **SCHEDULE,
}

__all__ = ["CHARLM_SPACE", "WORDLM_SPACE"]
