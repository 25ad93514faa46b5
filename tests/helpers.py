"""Shared test helpers: building twin layers and collecting outputs and gradients."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from elman import nn as enn

TORCH_LAYERS = {
    "RNN_TANH": torch.nn.RNN,
    "RNN_RELU": torch.nn.RNN,
    "LSTM": torch.nn.LSTM,
    "GRU": torch.nn.GRU,
}


def make_pair(mode: str, backend: str, dtype=torch.float64, **kw):
    """Our layer and torch.nn's with the same weights."""
    torch.manual_seed(0)
    extra = {"nonlinearity": mode[4:].lower()} if mode.startswith("RNN") else {}
    ref = TORCH_LAYERS[mode](**kw, **extra).to(dtype)
    ours_cls = {"LSTM": enn.LSTM, "GRU": enn.GRU}.get(mode, enn.RNN)
    ours = ours_cls(**kw, **extra, backend=backend).to(dtype)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def torch_with_lengths(ref, x, hx, lengths, batch_first):
    """torch.nn's answer for a padded batch with lengths: pack, run, pad back."""
    packed = pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False)
    out, state = ref(packed, hx)
    steps = x.shape[1] if batch_first else x.shape[0]
    return pad_packed_sequence(out, batch_first, total_length=steps)[0], state


def flat(state):
    """Final state as a tuple of tensors."""
    return state if isinstance(state, tuple) else (state,)


def backward_grads(module, inputs, outputs):
    """Gradients of a fixed random projection of ``outputs`` wrt inputs and parameters."""
    torch.manual_seed(1)
    loss = sum((o * torch.randn(o.shape, dtype=o.dtype)).sum() for o in outputs)
    params = [p for _, p in sorted(module.named_parameters())]
    return torch.autograd.grad(loss, [*inputs, *params])


def refused(capsys, argv: list[str], *parts: str) -> str:
    """Run the CLI on ``argv``: exit 2 and one ``elman: error:`` line, no traceback, holding
    every one of ``parts``."""
    from elman.cli import main

    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("elman: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, (part, err)
    return err


class ReachedModel(Exception):
    """Raised by ``assert_batches_reach_model_device``'s hook: the inputs were on the device."""


def assert_batches_reach_model_device(monkeypatch, model: torch.nn.Module, evaluate) -> None:
    """The device rule, checked on a CPU-only machine: with the evaluation helper told the
    model lives on the ``meta`` device, the first module ``evaluate()`` calls must receive every
    tensor on ``meta`` (a task that skips the helper, or builds a tensor on the CPU beside the
    batch, hands a CPU tensor to the model and fails here, as it would on a GPU)."""
    import elman.train.evaluation as evaluation

    monkeypatch.setattr(evaluation, "device_of", lambda m: torch.device("meta"))

    def check(module, args, kwargs):
        tensors = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)]
        nested = [t for a in args if isinstance(a, tuple | list) for t in a]
        tensors += [t for t in nested if isinstance(t, torch.Tensor)]
        cpu = [tuple(t.shape) for t in tensors if t.device.type != "meta"]
        assert not cpu, f"{type(module).__name__} got tensors {cpu} off the model's device"
        raise ReachedModel

    hooks = [m.register_forward_pre_hook(check, with_kwargs=True) for m in model.modules()]
    try:
        try:
            evaluate()
        except ReachedModel:
            return
        raise AssertionError("evaluate() never called the model")
    finally:
        for h in hooks:
            h.remove()
