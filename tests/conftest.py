"""Test-wide settings: tiny ops run fastest single-threaded, and two xdist workers would
otherwise fight over the two cores with spinning OpenMP threads.

Tests marked ``kernels`` need the compiled kernels: without them they are skipped, except
where ``ELMAN_REQUIRE_KERNELS=1`` (CI, which must have built them: ``.ci/run``), where they fail.
"""

import os

import pytest
import torch

torch.set_num_threads(1)

REQUIRE_KERNELS = os.environ.get("ELMAN_REQUIRE_KERNELS") == "1"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("kernels") is None:
        return
    from elman.kernels import fused

    if fused.available():
        return
    why = "the compiled kernels are not installed (pip install -e . --no-build-isolation)"
    if REQUIRE_KERNELS:
        pytest.fail(f"ELMAN_REQUIRE_KERNELS=1 but {why}", pytrace=False)
    pytest.skip(why)
