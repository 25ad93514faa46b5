"""What every ONNX writer here shares: the opset and a quiet exporter. Both ``elman.graphs.onnx``
(layers and models) and ``elman.graphs.scan`` (the Scan graphs it inlines) import this module,
so neither imports the other at load time."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

OPSET = 17


@contextmanager
def quiet_native_log() -> Iterator[None]:
    """Silence file descriptor 2 for a block: the exporter's C++ side logs a notice per
    node it cannot infer shapes for (packed sequences, the Scan placeholder) straight there,
    past Python's warnings; its errors still arrive as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


__all__ = ["OPSET", "quiet_native_log"]
