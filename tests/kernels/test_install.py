"""The fused kernels are compiled modules of the installed package: nothing compiles, locks
or waits at run time, and a missing module degrades to the other paths with one warning."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from elman.kernels import fused

PROBE = """
import sys, torch
from elman import nn as enn
from elman.kernels import fused
layer = enn.GRU(3, 4, backend="fused")
layer(torch.randn(5, 2, 3))[0].sum().backward()
print(fused.extension().__name__)
print("torch.utils.cpp_extension" in sys.modules, "torch.utils.file_baton" in sys.modules)
"""


def test_a_run_never_waits_on_a_build_lock(tmp_path):
    # A killed JIT build left these 0-byte locks; runs used to wait on them forever.
    before = []
    for name in ("elman_recurrent", "elman_recurrent_avx2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lock").touch()
        before.append(tmp_path / name / "lock")
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "ELMAN_DISABLE_FUSED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    module, flags = done.stdout.split("\n")[:2]
    assert module.startswith("elman.kernels._recurrent")
    assert flags == "False False"  # torch's JIT builder and its lock were never imported
    assert sorted(p for p in tmp_path.rglob("*")) == sorted([*before, *(p.parent for p in before)])


def test_the_module_matches_this_cpu():
    if not fused.available():
        pytest.skip("this installation has no compiled kernels")
    import torch

    simd = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    assert fused.extension().__name__.endswith("_avx2") == simd


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI must build the kernels")
def test_ci_has_the_compiled_kernels():
    assert fused.available(), "the fused kernels were not built by the package install"


def test_a_missing_module_warns_once_and_falls_back(monkeypatch):
    import importlib

    def missing(name, *a, **k):
        if name.startswith("elman.kernels._recurrent"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", missing)
    fused.extension.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert not fused.available()
            assert not fused.available()  # cached: one warning per process
        assert len(seen) == 1
        assert "--no-build-isolation" in str(seen[0].message)
    finally:
        monkeypatch.undo()
        fused.extension.cache_clear()
    assert fused.available() or os.environ.get("CI") != "true"
