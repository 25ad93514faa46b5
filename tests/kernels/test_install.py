"""The fused kernels are compiled modules of the installed package: nothing compiles, locks
or waits at run time, and a missing module degrades to the other paths with one warning."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch

from elman import nn as enn
from elman.kernels import fused
from tests.kernels.test_fused import LAYERS

PROBE = """
import sys, torch
from elman import nn as enn
from elman.kernels import fused
layer = enn.GRU(3, 4, backend="fused")
layer(torch.randn(5, 2, 3))[0].sum().backward()
print(fused.extension().__name__)
print("torch.utils.cpp_extension" in sys.modules, "torch.utils.file_baton" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.kernels
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


@pytest.mark.kernels
def test_the_module_matches_this_cpu():
    simd = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    assert fused.extension().__name__.endswith("_avx2") == simd


@pytest.mark.kernels  # fails where ELMAN_REQUIRE_KERNELS=1 (CI) and they were not built
def test_the_install_has_the_compiled_kernels():
    assert fused.available(), "the fused kernels were not built by the package install"


def test_a_missing_module_warns_once_and_falls_back(monkeypatch):
    import importlib

    def missing(name, *a, **k):
        if name.startswith("elman.kernels._recurrent"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    real = importlib.import_module
    monkeypatch.delenv("ELMAN_DISABLE_FUSED", raising=False)  # the warning path, not the switch
    fused.extension.cache_clear()
    built = fused.available()
    try:
        with monkeypatch.context() as patched:
            patched.setattr(importlib, "import_module", missing)
            fused.extension.cache_clear()
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                assert not fused.available()
                assert not fused.available()  # cached: one warning per process
            assert len(seen) == 1
            assert "--no-build-isolation" in str(seen[0].message)
        fused.extension.cache_clear()
        assert fused.available() == built  # the real module is found again
    finally:
        fused.extension.cache_clear()  # the next test reads the environment it restores


def test_without_the_extension_everything_runs_on_the_other_paths(monkeypatch):
    monkeypatch.setattr(fused, "extension", lambda: None)
    assert not fused.available()
    torch.manual_seed(0)
    for mode, make in LAYERS.items():
        layer = make(3, 4, 2, bidirectional=True, residual=True)  # native cannot: residual
        assert layer.path() == "reference", mode
        out, _ = layer(torch.randn(5, 2, 3), lengths=torch.tensor([5, 3]))
        out.sum().backward()
        assert make(3, 4).path() == ("reference" if mode.endswith("_LN") else "native")
    with pytest.raises(ValueError, match="the compiled extension"):
        enn.GRU(3, 4, backend="fused")
