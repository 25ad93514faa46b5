"""Checkpoints: one safetensors file holding tensors plus a JSON header; never a pickle.

Loading a checkpoint cannot execute code: safetensors stores raw tensors, and everything else
(configs, vocabulary, step counters, optimizer hyper-parameters) is JSON in the file's
metadata. Writes are atomic: the file is written beside its destination, flushed to disk, and
renamed over it, so a crash mid-write leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from elman.files import atomic_path

FORMAT = "elman-checkpoint/1"
_KEY = "elman"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, not ours, or from another task."""


def save_checkpoint(path: str | Path, tensors: dict[str, Tensor], meta: dict) -> Path:
    """Atomically write ``tensors`` and JSON-able ``meta`` to ``path``."""
    path = Path(path)
    header = json.dumps({"format": FORMAT, **meta})
    flat, seen = {}, set()
    for k, v in tensors.items():
        v = v.detach().to("cpu").contiguous()
        # tied weights share storage, which safetensors refuses: store a copy of each repeat
        ptr = v.untyped_storage().data_ptr() if v.numel() else None
        flat[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    with atomic_path(path) as tmp:
        try:
            save_file(flat, str(tmp), metadata={_KEY: header})
        except SafetensorError as e:  # its I/O errors, as the OSError they are
            full = "No space left" in str(e) or "code: 28" in str(e)
            raise OSError(errno.ENOSPC if full else errno.EIO, str(e), str(path)) from e
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    return path


def read_meta(path: str | Path, task: str | None = None) -> dict:
    """The JSON header of a checkpoint; with ``task``, it must have been written for that task."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(_KEY)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or not a safetensors file ({e})"
        ) from e
    if raw is None:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was not written by Elman (no '{_KEY}' metadata)"
        )
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has a header that is not JSON ({e})"
        ) from e
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"checkpoint {str(path)!r} has a header that is a JSON {type(meta).__name__}, "
            "expected an object"
        )
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format {meta.get('format')!r}; "
            f"this version reads {FORMAT!r}"
        )
    if task is not None and meta.get("task") != task:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is for task {meta.get('task')!r}, expected {task!r}"
        )
    return meta


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Turning a checkpoint's header and tensors into objects: any failure there means the
    file does not hold what its header claims (tampered, or from another version), so it
    surfaces as one ``CheckpointError`` naming the file instead of a traceback."""
    try:
        yield
    except CheckpointError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not hold a valid run "
            f"({type(e).__name__}: {_one_line(e)})"
        ) from e
    except (SyntaxError, RecursionError, MemoryError) as e:  # a nested literal in the header
        raise CheckpointError(
            f"checkpoint {str(path)!r} has a malformed header ({type(e).__name__})"
        ) from e


def _one_line(e: BaseException, limit: int = 300) -> str:
    """An error's message on one line (torch's size mismatch says what it is on line 2)."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or repr(e)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_checkpoint(path: str | Path, task: str | None = None) -> tuple[dict[str, Tensor], dict]:
    """Tensors and JSON header of a checkpoint written by ``save_checkpoint``."""
    meta = read_meta(path, task)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated ({e})") from e
    return tensors, meta


def prefixed(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """``{prefix + name: tensor}``: namespaces inside one checkpoint file."""
    return {f"{prefix}{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The tensors under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def optimizer_state(
    opt: torch.optim.Optimizer, names: list[str] | None = None
) -> tuple[dict[str, Tensor], dict]:
    """An optimizer's state dict split into tensors and JSON (hyper-parameters, scalars);
    ``names``: its parameters' names in order (over all param groups), kept so that a resume
    finds each parameter's state however the parameters are grouped then."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"{pid}.{name}"] = value
            else:
                scalars[f"{pid}.{name}"] = value
    meta = {"param_groups": sd["param_groups"], "scalars": scalars}
    return tensors, meta if names is None else {**meta, "names": names}


def load_optimizer_state(
    opt: torch.optim.Optimizer,
    tensors: dict[str, Tensor],
    meta: dict,
    names: list[str] | None = None,
) -> None:
    """Inverse of ``optimizer_state``. Given ``names`` (``opt``'s parameters' names in order)
    and the saved ones in ``meta``, a state saved under another grouping (e.g. one group,
    before the task had layer groups) moves to the parameters of the same names."""
    state: dict[int, dict] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    groups = meta["param_groups"]
    sizes = [len(g["params"]) for g in opt.param_groups]
    regrouped = names is not None and names != meta.get("names", names)
    if regrouped or [len(g["params"]) for g in groups] != sizes:
        state, groups = _regrouped(opt, state, meta, names)
    opt.load_state_dict({"state": state, "param_groups": groups})


def _regrouped(
    opt: torch.optim.Optimizer, state: dict[int, dict], meta: dict, names: list[str] | None
) -> tuple[dict[int, dict], list[dict]]:
    """``state`` renumbered from the saved names' order to ``names``' order, and param groups
    of ``opt``'s layout with the saved hyper-parameters where the group counts agree (else
    ``opt``'s own, from the same config; the trainer sets the rates every step anyway)."""
    if names is None or "names" not in meta:
        raise CheckpointError(
            f"the optimizer state holds {[len(g['params']) for g in meta['param_groups']]} "
            f"parameters per group, the optimizer {[len(g['params']) for g in opt.param_groups]}, "
            "and no parameter names say which is which"
        )
    index = {name: i for i, name in enumerate(names)}
    moved = {}
    for pid, values in state.items():
        name = meta["names"][pid]
        if name not in index:
            raise CheckpointError(
                f"the optimizer state has parameter {name!r}, which the optimizer lacks"
            )
        moved[index[name]] = values
    groups, saved = opt.state_dict()["param_groups"], meta["param_groups"]
    if len(groups) == len(saved):
        groups = [{**old, "params": g["params"]} for old, g in zip(saved, groups, strict=True)]
    return moved, groups
