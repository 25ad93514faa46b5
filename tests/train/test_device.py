"""Naming a training device and moving batches and states onto it."""

import pytest
import torch

from elman.data.batching import collate
from elman.data.stream import TokenStream
from elman.train import TrainConfig
from elman.train.device import device_of, move, resolve_device
from elman.train.distributed import backend_for


def test_move_reaches_every_tensor_and_keeps_the_rest():
    stream = TokenStream(torch.arange(41), 2, 4, doc_starts=torch.tensor([5]))
    with_starts, without = stream[1], stream[3]
    moved = move(with_starts, torch.device("cpu"))
    assert type(moved) is type(with_starts)
    assert torch.equal(moved.x, with_starts.x) and torch.equal(moved.starts, with_starts.starts)
    assert move(without, torch.device("cpu")).starts is None
    batch = collate([torch.arange(3), torch.arange(5)], [0, 1], torch.tensor([1, 0]))
    again = move(batch, torch.device("cpu"))
    assert torch.equal(again.mask, batch.mask) and torch.equal(again.y, batch.y)
    h, c = torch.zeros(2), torch.ones(2)
    assert move((h, c), torch.device("meta"))[1].device.type == "meta"
    assert move({"s": [h, 3, "x"]}, torch.device("meta"))["s"][1:] == [3, "x"]


def test_resolve_device_names_what_is_wrong():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match=r"device must be 'cpu'.*got 'tpu'"):
        resolve_device("tpu")
    assert device_of(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert device_of(torch.nn.ReLU()) == torch.device("cpu")


def test_cuda_on_a_machine_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # any machine: no GPU
    with pytest.raises(ValueError, match="device='cuda', but this machine has no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def test_config_device_and_backend():
    assert TrainConfig().device == "cpu"
    assert TrainConfig(device="cuda:1").device == "cuda:1"
    with pytest.raises(ValueError, match=r"device must be .* got 'gpu'"):
        TrainConfig(device="gpu")
    assert backend_for("cpu") == "gloo" and backend_for("cuda:0") == "nccl"
    assert backend_for("auto") == ("nccl" if torch.cuda.is_available() else "gloo")
