"""Per-series scaling, fitted on training values only and stored with the model.

    standard: z = (x - mean) / std
    minmax:   z = (x - min) / (max - min)
    robust:   z = (x - median) / IQR            (interquartile range: outliers barely move it)
    none:     z = x

A constant training series would divide by zero: its scale is taken as 1 instead. Values so
large that their scaling overflows (a scale that is not finite, or a scaled value past what
float32, the network's type, holds) are refused, naming where they are: ``Scaler.fit`` on
training values and ``Scaler.scaled`` on anything the model reads, so every reader (the
CLI, the server, streams) refuses them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elman.data.series import stamp

SCALINGS = ("standard", "minmax", "robust", "none")
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Scaler:
    """z = (x - loc) / scale for one series."""

    kind: str
    loc: float
    scale: float

    @classmethod
    def fit(
        cls, x: np.ndarray, kind: str = "standard", where: str = "values", labels=None
    ) -> Scaler:
        """The scaler of ``kind`` for training values ``x`` (never pass test data here);
        ``where`` and ``labels`` name them in errors (see ``scaled``)."""
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0 or not np.isfinite(x).all():
            raise ValueError(f"{where}: expected a non-empty array of finite training values")
        with np.errstate(over="ignore", invalid="ignore"):
            if kind == "standard":
                loc, scale = x.mean(), x.std()
            elif kind == "minmax":
                loc, scale = x.min(), x.max() - x.min()
            elif kind == "robust":
                q1, loc, q3 = np.percentile(x, [25, 50, 75])
                scale = q3 - q1
            elif kind == "none":
                loc, scale = 0.0, 1.0
            else:
                raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}; got {kind!r}")
        if not (np.isfinite(loc) and np.isfinite(scale)):
            big = float(x[np.argmax(np.abs(x))])
            raise ValueError(
                f"{where}: {kind} scaling overflows (loc {float(loc):g}, scale {float(scale):g}) "
                f"on values as large as {big:g}; rescale the data (e.g. other units)"
            )
        scaler = cls(kind, float(loc), float(scale) if scale > 1e-12 else 1.0)
        scaler.scaled(x, where, labels)
        return scaler

    def transform(self, x):
        return (x - self.loc) / self.scale

    def scaled(self, x, where: str = "values", labels=None) -> np.ndarray:
        """``transform(x)`` as float64, refusing (ValueError naming ``where``, the position,
        or its entry of ``labels`` such as a timestamp, and the value) any value whose scaled
        value is not a finite float32."""
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.asarray(self.transform(x), dtype=np.float64)
        bad = np.flatnonzero(~(np.abs(z) <= FLOAT32_MAX))
        if bad.size:
            i = int(bad[0])
            at = "" if not x.ndim else f"[{i}]" if labels is None else f" at {stamp(labels[i])}"
            raise ValueError(
                f"{where}{at}: {float(x.flat[i])!r} is out of range: scaled as the training data "
                f"was ((x - {self.loc:g}) / {self.scale:g}) it is {float(z.flat[i]):g}, past the "
                f"{FLOAT32_MAX:.3g} the network can read"
            )
        return z

    def inverse(self, z):
        return z * self.scale + self.loc

    def to_json(self) -> dict:
        return {"kind": self.kind, "loc": self.loc, "scale": self.scale}

    @classmethod
    def from_json(cls, data: dict) -> Scaler:
        return cls(str(data["kind"]), float(data["loc"]), float(data["scale"]))


__all__ = ["FLOAT32_MAX", "SCALINGS", "Scaler"]
