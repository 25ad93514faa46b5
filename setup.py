"""Builds the fused recurrent kernels (elman/kernels/csrc/recurrent.cpp) as compiled extension
modules of the package, so that nothing compiles, or waits on another process's build, at
run time. torch must be importable by the build (``pip install --no-build-isolation``; the
Makefile installs the CPU build of torch first), because the modules link against it: in an
isolated build environment pip would fetch a multi-GB CUDA build of torch. Without torch or a
C++ compiler the package installs without the modules and its layers use the other paths.
"""

from __future__ import annotations

import platform
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

SOURCE = "elman/kernels/csrc/recurrent.cpp"
FLAGS = ["-O3", "-fno-trapping-math", "-fno-math-errno", "-fopenmp-simd"]
# A portable module, and where the compiler can target x86-64 an AVX2+FMA twin, chosen at
# import by the CPU that runs it (the building machine may not be the running one).
VARIANTS = {"_recurrent": []}
if platform.machine().lower() in ("x86_64", "amd64"):
    VARIANTS["_recurrent_avx2"] = ["-mavx2", "-mfma"]


class OptionalBuild(build_ext):
    """A module that fails to compile is reported and skipped, not fatal: the package works
    without it (``elman.kernels.fused`` warns once and uses the other paths)."""

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # a compiler error of any kind means "not here"
            print(
                f"elman: could not build {ext.name} ({e}); installing without it", file=sys.stderr
            )


def extensions() -> tuple[list, dict]:
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print(
            "elman: torch is not importable by this build, so the fused kernels are not built; "
            "install torch first and then this package with --no-build-isolation",
            file=sys.stderr,
        )
        return [], {}
    modules = [
        # -s: without the debug symbols Python's flags add, 12 MB -> well under 1 MB each
        CppExtension(
            f"elman.kernels.{name}",
            [SOURCE],
            extra_compile_args=FLAGS + extra,
            extra_link_args=["-s"],
        )
        for name, extra in VARIANTS.items()
    ]

    class Build(OptionalBuild, BuildExtension):
        pass

    return modules, {"build_ext": Build}


modules, commands = extensions()
setup(ext_modules=modules, cmdclass=commands)
