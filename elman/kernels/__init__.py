"""Fast paths beside the reference loop, each with an explicit eligibility check."""

from elman.kernels.native import native_blockers, native_forward

__all__ = ["native_blockers", "native_forward"]
