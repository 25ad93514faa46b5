"""Importing elman changes nothing process-wide: every module of the package, imported in a
fresh process, leaves the environment and matplotlib's backend as they were, and allocates
no tensor (so ``elman.use_huge_pages`` still works after it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")

PROBE = """
import importlib, json, os, pkgutil, sys
try:
    import matplotlib
except ImportError:
    matplotlib = None
backend = matplotlib.get_backend() if matplotlib else None
before = dict(os.environ)
import elman
missing, failed = {}, {}
for info in pkgutil.walk_packages(elman.__path__, "elman."):
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as e:  # an optional dependency, or a real error inside elman
        (failed if (e.name or "").startswith("elman") else missing)[info.name] = repr(e)
    except Exception as e:
        failed[info.name] = repr(e)
after = dict(os.environ)
changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
elman.use_huge_pages()
import torch
x = torch.empty(64 << 20, dtype=torch.uint8)
x.fill_(1)
huge = 0
if os.path.exists("/proc/self/smaps_rollup"):
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("AnonHugePages:"):
            huge = int(line.split()[1])
print(json.dumps({
    "changed": changed, "missing": missing, "failed": failed, "backend": backend,
    "backend_after": matplotlib.get_backend() if matplotlib else None, "huge_kb": huge,
}))
"""


@pytest.fixture(scope="module")
def imported() -> dict:
    # svg, not agg: a module that forced agg (as elman.viz once did) must show as a change
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    env["MPLBACKEND"] = "svg"
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_every_module_imports(imported):
    assert imported["failed"] == {}
    if imported["missing"]:
        pytest.skip(f"optional dependencies missing, not imported: {imported['missing']}")


@pytest.mark.slow
def test_importing_elman_changes_no_environment_variable(imported):
    assert imported["changed"] == []


@pytest.mark.slow
def test_importing_elman_keeps_the_matplotlib_backend(imported):
    pytest.importorskip("matplotlib")
    assert imported["backend"] == "svg"
    assert imported["backend_after"] == "svg"


@pytest.mark.slow
def test_huge_pages_can_still_be_turned_on_after_importing_elman(imported):
    # torch reads THP_MEM_ALLOC_ENABLE at its first CPU allocation: no elman import may make one
    if not THP.exists() or "[never]" in THP.read_text():
        pytest.skip("this kernel has no transparent huge pages")
    assert imported["huge_kb"] > 0


def test_the_elman_command_turns_on_huge_pages_before_running(monkeypatch):
    import elman.cli
    from elman.cli import __main__ as entry

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["elman"].partition(":")
    assert sys.modules[module] is entry and getattr(entry, name) is entry.main
    seen = []
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    monkeypatch.setattr(
        elman.cli, "main", lambda: seen.append(os.environ.get("THP_MEM_ALLOC_ENABLE")) or 0
    )
    assert entry.main() == 0
    assert seen == ["1"]
