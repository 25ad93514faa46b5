"""The default search spaces of `elman tune charlm` and `elman tune wordlm` (a space file's
form, see ``elman.tune.space``): sizes a CPU trains in minutes, the AWD-LSTM regularisers and
the optimiser. NT-ASGD is left out: it wants rates near 30, another range than Adam's."""

from __future__ import annotations

from elman.tasks import spaces

# AdamW with decoupled weight decay stays (``CHARLM.train_defaults``): under plain Adam its
# default decay of 0.1 would be an L2 pull far too strong
CHARLM_SPACE = {
    "cell": dict(type="categorical", choices=["lstm", "gru"]),
    "hidden": dict(type="int", low=128, high=512, step=128),
    "layers": dict(type="int", low=1, high=3),
    "embedding": dict(type="int", low=32, high=128, step=32),
    "dropout": dict(type="float", low=0.0, high=0.5),
    "embed_dropout": dict(type="float", low=0.0, high=0.3),
    **spaces.REGULARIZERS,
    "batch_size": dict(type="categorical", choices=[16, 32, 64]),
    "seq_len": dict(type="categorical", choices=[64, 128, 256]),
    "lr": dict(type="float", low=5e-4, high=1e-2, log=True),
    "weight_decay": dict(type="float", low=0.01, high=0.3, log=True),
    **spaces.SCHEDULE,
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
    **spaces.REGULARIZERS,
    "ar": dict(type="float", low=0.0, high=2.0),
    "tar": dict(type="float", low=0.0, high=2.0),
    "batch_size": dict(type="categorical", choices=[16, 32, 64]),
    "seq_len": dict(type="categorical", choices=[35, 70]),
    **spaces.optimizer(5e-4, 1e-2),
}

__all__ = ["CHARLM_SPACE", "WORDLM_SPACE"]
