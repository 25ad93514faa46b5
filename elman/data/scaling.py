"""Per-series scaling, fitted on training values only and stored with the model.

    standard: z = (x - mean) / std
    minmax:   z = (x - min) / (max - min)
    robust:   z = (x - median) / IQR            (interquartile range: outliers barely move it)
    none:     z = x

A constant training series would divide by zero: its scale is taken as 1 instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCALINGS = ("standard", "minmax", "robust", "none")


@dataclass(frozen=True)
class Scaler:
    """z = (x - loc) / scale for one series."""

    kind: str
    loc: float
    scale: float

    @classmethod
    def fit(cls, x: np.ndarray, kind: str = "standard") -> Scaler:
        """The scaler of ``kind`` for training values ``x`` (never pass test data here)."""
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0 or not np.isfinite(x).all():
            raise ValueError("scaler: expected a non-empty array of finite training values")
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
        return cls(kind, float(loc), float(scale) if scale > 1e-12 else 1.0)

    def transform(self, x):
        return (x - self.loc) / self.scale

    def inverse(self, z):
        return z * self.scale + self.loc

    def to_json(self) -> dict:
        return {"kind": self.kind, "loc": self.loc, "scale": self.scale}

    @classmethod
    def from_json(cls, data: dict) -> Scaler:
        return cls(str(data["kind"]), float(data["loc"]), float(data["scale"]))


__all__ = ["SCALINGS", "Scaler"]
